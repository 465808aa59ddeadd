"""Tests for base job templates: placeholders, validation, merging and --set defaults."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skyrun.jobs.templates import (
    JobTemplateError,
    defaults_from_schema,
    merge_job_variables,
    set_variable_default,
    template_placeholders,
    unused_variable_warnings,
    validate_base_job_template,
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


def simple(
    job_configuration: dict[str, Any], properties: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "job_configuration": job_configuration,
        "variables": {"type": "object", "properties": properties, **extra},
    }


# --- template_placeholders ---------------------------------------------------------------


def test_template_placeholders_paths_and_names_in_document_order() -> None:
    found = template_placeholders(
        {
            "a": "{{ x }}",
            "b": ["plain", "pre-{{y}}-{{  $HOME }}"],
            "c": {"d": "{{ skyrun.variables.token }}", "{{ key }}": 1},
            "n": 3,
        }
    )
    assert found == [
        ("job_configuration.a", "x"),
        ("job_configuration.b[1]", "y"),
        ("job_configuration.b[1]", "$HOME"),
        ("job_configuration.c.d", "skyrun.variables.token"),
    ]


def test_template_placeholders_custom_root_and_non_placeholders() -> None:
    assert template_placeholders("{{ a }}", root="x") == [("x", "a")]
    assert template_placeholders({"a": "{ a }", "b": "{{ }}", "c": "{{ two words }}"}) == []


# --- validate_base_job_template ------------------------------------------------------------


def test_valid_template_without_unused_variables_has_no_warnings() -> None:
    assert validate_base_job_template(make_template()) == []


def test_unused_variables_are_warnings() -> None:
    template = make_template()
    template["variables"]["properties"]["memory"] = {"type": "string"}
    template["variables"]["properties"]["region"] = {"type": "string"}
    assert validate_base_job_template(template) == [
        "variable 'memory' is declared but not used in job_configuration",
        "variable 'region' is declared but not used in job_configuration",
    ]
    # The API reports the same warnings for a template it has already validated.
    assert unused_variable_warnings(template) == validate_base_job_template(template)


def test_template_must_be_an_object() -> None:
    with pytest.raises(JobTemplateError, match=r"must be a JSON object .* got list"):
        validate_base_job_template([])  # type: ignore[arg-type]


@pytest.mark.parametrize("missing", ["job_configuration", "variables"])
def test_missing_top_level_key(missing: str) -> None:
    template = make_template()
    del template[missing]
    with pytest.raises(JobTemplateError) as info:
        validate_base_job_template(template)
    assert f"missing the key(s) '{missing}'" in str(info.value)
    assert "exactly the keys 'job_configuration' and 'variables'" in str(info.value)


def test_unknown_top_level_keys() -> None:
    template = make_template()
    template["extra"] = 1
    template["another"] = 2
    with pytest.raises(JobTemplateError) as info:
        validate_base_job_template(template)
    assert "unknown key(s) 'another', 'extra'" in str(info.value)
    assert "only 'job_configuration' and 'variables' are allowed" in str(info.value)


def test_job_configuration_must_be_an_object() -> None:
    with pytest.raises(JobTemplateError, match=r"job_configuration must be a JSON object, got str"):
        validate_base_job_template({"job_configuration": "x", "variables": {}})


def test_variables_must_be_an_object_schema() -> None:
    with pytest.raises(JobTemplateError, match=r"variables must be a JSON Schema object"):
        validate_base_job_template({"job_configuration": {}, "variables": []})
    with pytest.raises(JobTemplateError, match=r"'type': \"array\""):
        validate_base_job_template({"job_configuration": {}, "variables": {"type": "array"}})


def test_variables_must_be_valid_json_schema() -> None:
    template = simple({"cpu": "{{ cpu }}"}, {"cpu": {"type": "integr"}})
    with pytest.raises(JobTemplateError) as info:
        validate_base_job_template(template)
    message = str(info.value)
    assert "variables is not a valid JSON Schema" in message
    assert "variables.properties.cpu.type" in message


def test_empty_template_is_valid() -> None:
    assert validate_base_job_template({"job_configuration": {}, "variables": {}}) == []


def test_undeclared_placeholder_names_placeholder_and_path() -> None:
    template = simple({"env": {"TOKEN": "{{ token }}"}}, {})
    with pytest.raises(JobTemplateError) as info:
        validate_base_job_template(template)
    message = str(info.value)
    assert message.startswith("job_configuration.env.TOKEN: placeholder '{{ token }}'")
    assert "variable 'token', which is not declared in variables.properties" in message


def test_undeclared_placeholders_in_lists_are_all_reported() -> None:
    template = simple({"command": ["run", "{{ a }}", "--x={{ b }}"]}, {})
    with pytest.raises(JobTemplateError) as info:
        validate_base_job_template(template)
    message = str(info.value)
    # Callers name what was invalid ("invalid base job template: ..."), so no header here.
    assert message.startswith("2 problems:\n  - ")
    assert "invalid base job template" not in message
    assert "job_configuration.command[1]: placeholder '{{ a }}'" in message
    assert "job_configuration.command[2]: placeholder '{{ b }}'" in message
    assert len(info.value.problems) == 2


def test_special_placeholders_need_no_declaration() -> None:
    template = simple(
        {
            "home": "{{ $HOME }}",
            "token": "{{ skyrun.variables.api_token }}",
            "creds": "{{ skyrun.blocks.gcp-credentials.main }}",
        },
        {},
    )
    assert validate_base_job_template(template) == []


def test_invalid_default_names_the_variable() -> None:
    template = simple({"cpu": "{{ cpu }}"}, {"cpu": {"type": "integer", "default": "abc"}})
    with pytest.raises(JobTemplateError) as info:
        validate_base_job_template(template)
    assert str(info.value) == (
        "variable 'cpu' has an invalid default: 'abc' is not of type 'integer'; "
        "fix the default or the variable's schema"
    )


def test_default_is_validated_through_refs() -> None:
    template = simple(
        {"size": "{{ size }}"},
        {"size": {"$ref": "#/$defs/size", "default": "huge"}},
        **{"$defs": {"size": {"enum": ["small", "large"]}}},
    )
    with pytest.raises(JobTemplateError, match=r"variable 'size' has an invalid default"):
        validate_base_job_template(template)
    template["variables"]["properties"]["size"]["default"] = "small"
    assert validate_base_job_template(template) == []


def test_required_must_name_declared_variables() -> None:
    template = simple({}, {}, required=["image"])
    with pytest.raises(JobTemplateError, match=r"variables\.required lists 'image'"):
        validate_base_job_template(template)


# --- defaults_from_schema / merge_job_variables --------------------------------------------


def test_defaults_from_schema_takes_declared_defaults_only() -> None:
    schema = make_template()["variables"]
    defaults = defaults_from_schema(schema)
    assert defaults == {
        "module": "app",
        "cpu": 1,
        "env": {"LOG_LEVEL": "INFO"},
        "labels": {},
        "timeout": 60,
    }
    defaults["env"]["X"] = "1"
    assert schema["properties"]["env"]["default"] == {"LOG_LEVEL": "INFO"}
    assert defaults_from_schema({}) == {}


def test_merge_precedence_pool_deployment_run() -> None:
    merged = merge_job_variables(
        {"image": "pool", "cpu": 1, "memory": "1Gi"},
        {"image": "deployment", "cpu": 2},
        {"cpu": 4},
    )
    assert merged == {"image": "deployment", "cpu": 4, "memory": "1Gi"}


def test_merge_env_key_by_key_at_every_level() -> None:
    pool = {"env": {"A": "pool", "B": "pool", "C": "pool"}}
    deployment = {"env": {"B": "deployment", "D": "deployment"}}
    run = {"env": {"C": "run", "D": "run"}}
    merged = merge_job_variables(pool, deployment, run)
    assert merged["env"] == {"A": "pool", "B": "deployment", "C": "run", "D": "run"}


def test_merge_replaces_other_dicts_and_tolerates_none_layers() -> None:
    merged = merge_job_variables({"labels": {"a": "1"}}, None, {"labels": {"b": "2"}})
    assert merged == {"labels": {"b": "2"}}
    assert merge_job_variables({"x": 1}, None, None) == {"x": 1}
    assert merge_job_variables({}, None, {"env": {"A": "1"}}) == {"env": {"A": "1"}}


def test_merge_does_not_mutate_inputs() -> None:
    pool = {"env": {"A": "1"}, "labels": {"x": "y"}}
    deployment = {"env": {"B": "2"}}
    snapshot = copy.deepcopy((pool, deployment))
    merged = merge_job_variables(pool, deployment, None)
    merged["env"]["C"] = "3"
    merged["labels"]["z"] = "w"
    assert (pool, deployment) == snapshot


# --- set_variable_default ------------------------------------------------------------------


def test_set_variable_default_parses_json() -> None:
    template = make_template()
    snapshot = copy.deepcopy(template)
    updated = set_variable_default(template, "cpu", "4")
    assert updated["variables"]["properties"]["cpu"]["default"] == 4
    assert template == snapshot
    updated = set_variable_default(template, "env", '{"A": "1"}')
    assert updated["variables"]["properties"]["env"]["default"] == {"A": "1"}
    assert validate_base_job_template(updated) == []


def test_set_variable_default_keeps_raw_string_for_string_type() -> None:
    updated = set_variable_default(make_template(), "image", "123")
    assert updated["variables"]["properties"]["image"]["default"] == "123"
    updated = set_variable_default(make_template(), "module", '"quoted"')
    assert updated["variables"]["properties"]["module"]["default"] == '"quoted"'


def test_set_variable_default_non_json_stays_a_string() -> None:
    template = simple({"x": "{{ x }}"}, {"x": {}})
    updated = set_variable_default(template, "x", "not json")
    assert updated["variables"]["properties"]["x"]["default"] == "not json"
    updated = set_variable_default(template, "x", "[1, 2]")
    assert updated["variables"]["properties"]["x"]["default"] == [1, 2]


def test_set_variable_default_invalid_value_names_variable() -> None:
    with pytest.raises(JobTemplateError) as info:
        set_variable_default(make_template(), "cpu", "abc")
    assert str(info.value) == (
        "invalid value for variable 'cpu' (--set cpu=abc): 'abc' is not of type 'integer'"
    )
    with pytest.raises(JobTemplateError, match=r"variable 'cpu'.*less than the minimum of 1"):
        set_variable_default(make_template(), "cpu", "0")


def test_set_variable_default_unknown_variable_lists_known_ones() -> None:
    with pytest.raises(JobTemplateError) as info:
        set_variable_default(make_template(), "memory", "1Gi")
    message = str(info.value)
    assert message.startswith("unknown variable 'memory'")
    assert "'image', 'module', 'cpu', 'env', 'labels', 'working_dir', 'timeout'" in message
    with pytest.raises(JobTemplateError, match=r"unknown variable 'x'.*\(none\)"):
        set_variable_default({"job_configuration": {}, "variables": {}}, "x", "1")


def test_set_variable_default_uses_refs() -> None:
    template = simple(
        {"size": "{{ size }}"},
        {"size": {"$ref": "#/$defs/size"}},
        **{"$defs": {"size": {"enum": ["small", "large"]}}},
    )
    updated = set_variable_default(template, "size", "large")
    assert updated["variables"]["properties"]["size"]["default"] == "large"
    with pytest.raises(JobTemplateError, match=r"variable 'size'"):
        set_variable_default(template, "size", "huge")


def test_job_template_error_is_a_value_error() -> None:
    error = JobTemplateError("boom")
    assert isinstance(error, ValueError)
    assert error.problems == ["boom"]
