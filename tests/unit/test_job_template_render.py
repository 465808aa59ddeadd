"""Tests for rendering base job templates with job variables (render, prepare_job)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skyrun.jobs.templates import (
    JobTemplateError,
    prepare_job,
    render_job_configuration,
    validate_base_job_template,
)

HINT = (
    "set it in the work pool's defaults, the deployment's job_variables or the run's job_variables"
)


def make_template() -> dict[str, Any]:
    return {
        "job_configuration": {
            "image": "{{ image }}",
            "command": ["python", "-m", "{{module}}", "--cpu={{ cpu }}"],
            "cpu": "{{ cpu }}",
            "env": "{{ env }}",
            "labels": "{{ labels }}",
            "working_dir": "{{ working_dir }}",
            "timeout": "  {{ timeout }}  ",
        },
        "variables": {
            "type": "object",
            "required": ["image"],
            "properties": {
                "image": {"type": "string"},
                "module": {"type": "string", "default": "app"},
                "cpu": {"type": "integer", "minimum": 1, "default": 1},
                "env": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "default": {"LOG_LEVEL": "INFO"},
                },
                "labels": {"type": "object", "default": {}},
                "working_dir": {"type": "string"},
                "timeout": {"type": "number", "default": 60},
            },
        },
    }


def render(
    template: dict[str, Any],
    values: dict[str, Any],
    env: dict[str, str] | None = None,
    skyrun_variables: Any = None,
) -> dict[str, Any]:
    return render_job_configuration(
        template,
        values,
        env=env or {},
        skyrun_variables=skyrun_variables if skyrun_variables is not None else {},
    )


def simple(
    job_configuration: dict[str, Any], properties: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "job_configuration": job_configuration,
        "variables": {"type": "object", "properties": properties, **extra},
    }


# --- render_job_configuration --------------------------------------------------------------


def test_render_keeps_json_types_for_whole_value_placeholders() -> None:
    values = {"image": "img:1", "cpu": 2, "labels": {"team": "data"}, "timeout": 1.5}
    result = render(make_template(), values)
    assert result["image"] == "img:1"
    assert result["cpu"] == 2
    assert result["labels"] == {"team": "data"}
    assert result["env"] == {"LOG_LEVEL": "INFO"}
    assert result["timeout"] == 1.5  # surrounding whitespace is ignored
    assert result["command"] == ["python", "-m", "app", "--cpu=2"]


def test_render_keeps_lists_and_bools() -> None:
    template = simple(
        {"args": "{{ args }}", "debug": "{{debug}}", "n": 5, "flag": False},
        {"args": {"type": "array"}, "debug": {"type": "boolean"}},
    )
    result = render(template, {"args": ["a", 1], "debug": True})
    assert result == {"args": ["a", 1], "debug": True, "n": 5, "flag": False}


def test_render_embedded_placeholders_are_stringified() -> None:
    template = simple(
        {"text": "cpu={{ cpu }} labels={{ labels }} items={{ items }} name={{ name }}"},
        {
            "cpu": {"type": "integer"},
            "labels": {"type": "object"},
            "items": {"type": "array"},
            "name": {"type": "string"},
        },
    )
    result = render(template, {"cpu": 2, "labels": {"a": 1}, "items": [1, "x"], "name": "n"})
    assert result["text"] == 'cpu=2 labels={"a": 1} items=[1, "x"] name=n'


def test_render_does_not_reexpand_values() -> None:
    template = simple({"a": "x {{ a }}", "b": "{{ b }}"}, {"a": {}, "b": {}})
    result = render(template, {"a": "{{ b }}", "b": "{{ a }}"})
    assert result == {"a": "x {{ b }}", "b": "{{ a }}"}


def test_render_returns_a_deep_copy() -> None:
    template = make_template()
    snapshot = copy.deepcopy(template)
    values = {"image": "img", "labels": {"team": "data"}}
    result = render(template, values)
    result["labels"]["team"] = "changed"
    result["command"].append("more")
    assert values["labels"] == {"team": "data"}
    assert template == snapshot


def test_render_missing_required_variable_names_path_and_variable() -> None:
    template = simple({"command": "{{ image }}"}, {"image": {"type": "string"}}, required=["image"])
    with pytest.raises(JobTemplateError) as info:
        render(template, {})
    assert str(info.value) == f"job_configuration.command: variable 'image' has no value; {HINT}"


def test_render_none_value_is_missing() -> None:
    template = simple({"image": "{{ image }}"}, {"image": {"type": "string"}}, required=["image"])
    with pytest.raises(JobTemplateError, match=r"job_configuration\.image: variable 'image'"):
        render(template, {"image": None})


def test_render_none_overrides_default_then_counts_as_missing() -> None:
    template = simple({"cmd": "run {{ module }}"}, {"module": {"type": "string", "default": "a"}})
    with pytest.raises(JobTemplateError, match=r"job_configuration\.cmd: variable 'module'"):
        render(template, {"module": None})


def test_render_optional_whole_value_becomes_none() -> None:
    result = render(make_template(), {"image": "img"})
    assert result["working_dir"] is None
    result = render(make_template(), {"image": "img", "working_dir": None})
    assert result["working_dir"] is None


def test_render_optional_embedded_is_still_an_error() -> None:
    template = simple({"command": ["cd {{ working_dir }}"]}, {"working_dir": {"type": "string"}})
    with pytest.raises(JobTemplateError) as info:
        render(template, {})
    assert str(info.value) == (
        f"job_configuration.command[0]: variable 'working_dir' has no value; {HINT}"
    )


def test_render_reports_every_missing_value() -> None:
    template = simple(
        {"a": "{{ a }}", "b": "x{{ b }}"},
        {"a": {"type": "string"}, "b": {"type": "string"}},
        required=["a"],
    )
    with pytest.raises(JobTemplateError) as info:
        render(template, {})
    assert str(info.value).startswith("cannot render job_configuration (2 problems):")
    assert info.value.problems == [
        f"job_configuration.a: variable 'a' has no value; {HINT}",
        f"job_configuration.b: variable 'b' has no value; {HINT}",
    ]


def test_render_environment_placeholders() -> None:
    template = simple({"home": "{{ $HOME }}", "path": "{{$HOME}}/bin"}, {})
    assert render(template, {}, env={"HOME": "/root"}) == {"home": "/root", "path": "/root/bin"}


def test_render_unknown_environment_variable_is_an_error() -> None:
    template = simple({"env": {"TOKEN": "{{ $API_TOKEN }}"}}, {})
    with pytest.raises(JobTemplateError) as info:
        render(template, {}, env={"HOME": "/root"})
    message = str(info.value)
    assert message.startswith("job_configuration.env.TOKEN: environment variable 'API_TOKEN'")
    assert "is not set" in message


def test_render_skyrun_variables_from_mapping() -> None:
    template = simple(
        {"token": "{{ skyrun.variables.token }}", "conf": "{{ skyrun.variables.conf }}"}, {}
    )
    result = render(template, {}, skyrun_variables={"token": "s3cret", "conf": {"a": [1]}})
    assert result == {"token": "s3cret", "conf": {"a": [1]}}


def test_render_skyrun_variables_from_callable() -> None:
    store = {"region": "eu"}

    def lookup(name: str) -> Any:
        return store[name]

    template = simple({"r": "region-{{ skyrun.variables.region }}"}, {})
    assert render(template, {}, skyrun_variables=lookup) == {"r": "region-eu"}
    missing = simple({"r": "{{ skyrun.variables.zone }}"}, {})
    with pytest.raises(JobTemplateError, match=r"job_configuration\.r: skyrun variable 'zone'"):
        render(missing, {}, skyrun_variables=lookup)
    with pytest.raises(JobTemplateError, match=r"skyrun variable 'zone' does not exist"):
        render(missing, {}, skyrun_variables=lambda name: None)


def test_render_missing_skyrun_variable_from_mapping() -> None:
    template = simple({"a": ["{{ skyrun.variables.nope }}"]}, {})
    with pytest.raises(JobTemplateError) as info:
        render(template, {}, skyrun_variables={"other": 1})
    assert str(info.value).startswith("job_configuration.a[0]: skyrun variable 'nope'")


def test_unknown_skyrun_placeholders_are_refused_where_they_are() -> None:
    template = simple({"name": "run-{{ skyrun.flow_run.id }}"}, {})
    with pytest.raises(JobTemplateError) as info:
        validate_base_job_template(template)
    assert str(info.value).startswith(
        "job_configuration.name: unknown placeholder '{{ skyrun.flow_run.id }}'"
    )
    with pytest.raises(JobTemplateError, match=r"job_configuration\.name: unknown placeholder"):
        render(template, {})


def test_render_validates_values_against_schema() -> None:
    with pytest.raises(JobTemplateError) as info:
        render(make_template(), {"image": "img", "cpu": "abc"})
    assert str(info.value) == "job variable 'cpu': 'abc' is not of type 'integer'"


def test_render_lists_every_invalid_variable() -> None:
    with pytest.raises(JobTemplateError) as info:
        render(make_template(), {"image": 3, "cpu": 0, "env": {"A": 1}})
    message = str(info.value)
    assert message.startswith("invalid job variables (3 problems):")
    assert "job variable 'image': 3 is not of type 'string'" in message
    assert "job variable 'cpu': 0 is less than the minimum of 1" in message
    assert "job variable 'env': 1 is not of type 'string' (at env.A)" in message


def test_render_required_variable_not_used_in_template() -> None:
    template = simple({}, {"region": {"type": "string"}}, required=["region"])
    with pytest.raises(JobTemplateError) as info:
        render(template, {})
    assert str(info.value) == f"job variable 'region' is required but has no value; {HINT}"


def test_render_ignores_undeclared_values() -> None:
    template = simple(
        {"image": "{{ image }}"}, {"image": {"type": "string"}}, additionalProperties=False
    )
    assert render(template, {"image": "img", "unknown": object()}) == {"image": "img"}


def test_render_merges_env_with_schema_default() -> None:
    result = render(make_template(), {"image": "img", "env": {"EXTRA": "1"}})
    assert result["env"] == {"LOG_LEVEL": "INFO", "EXTRA": "1"}


def test_render_does_not_template_dict_keys() -> None:
    template = simple({"{{ image }}": "{{ image }}"}, {"image": {"type": "string"}})
    assert render(template, {"image": "img"}) == {"{{ image }}": "img"}


def test_render_rejects_invalid_template() -> None:
    template = simple({"image": "{{ image }}"}, {})
    with pytest.raises(JobTemplateError, match=r"job_configuration\.image: placeholder"):
        render(template, {"image": "img"})


# --- prepare_job ---------------------------------------------------------------------------


def test_prepare_job_defaults_merge_and_render() -> None:
    result = prepare_job(
        make_template(),
        {"image": "img:deploy", "cpu": 2, "env": {"A": "deploy", "B": "deploy"}},
        {"cpu": 4, "env": {"B": "run"}, "working_dir": "/app"},
        env={},
        skyrun_variables={},
    )
    assert result == {
        "image": "img:deploy",
        "command": ["python", "-m", "app", "--cpu=4"],
        "cpu": 4,
        "env": {"LOG_LEVEL": "INFO", "A": "deploy", "B": "run"},
        "labels": {},
        "working_dir": "/app",
        "timeout": 60,
    }


def test_prepare_job_without_job_variables_reports_missing_required() -> None:
    with pytest.raises(JobTemplateError) as info:
        prepare_job(make_template(), None, None, env={}, skyrun_variables={})
    assert str(info.value) == f"job_configuration.image: variable 'image' has no value; {HINT}"


def test_prepare_job_validates_run_job_variables() -> None:
    with pytest.raises(JobTemplateError, match=r"job variable 'cpu': 'many'"):
        prepare_job(make_template(), {"image": "i"}, {"cpu": "many"}, env={}, skyrun_variables={})


def test_prepare_job_validates_template() -> None:
    template = make_template()
    template["extra"] = {}
    with pytest.raises(JobTemplateError, match=r"unknown key"):
        prepare_job(template, {"image": "i"}, None, env={}, skyrun_variables={})
