"""ui/schema_form.py: which control each JSON schema property gets, its label, value and
whether null is allowed; the required parameters a run still lacks."""

from __future__ import annotations

from skyrun.integrations.gcp.job_template import CLOUD_RUN_JOB_TEMPLATE
from skyrun.server.ui.schema_form import (
    block_types_of,
    missing_required,
    schema_fields,
)


def by_name(schema: dict, **options: object) -> dict:
    return {f.name: f for f in schema_fields(schema, **options)}  # type: ignore[arg-type]


def test_scalars_enums_and_json_get_their_controls() -> None:
    fields = by_name(
        {
            "type": "object",
            "properties": {
                "s": {"type": "string", "title": "S title", "description": "about s"},
                "i": {"type": "integer", "minimum": 1, "maximum": 9},
                "n": {"type": "number"},
                "b": {"type": "boolean", "default": True},
                "e": {"enum": ["a", 2]},
                "c": {"const": "only"},
                "a": {"type": "array", "items": {"type": "string"}},
                "o": {"type": "object"},
                "untyped": {},
            },
            "required": ["s"],
        },
        prefix="parameters",
    )
    assert {name: f.kind for name, f in fields.items()} == {
        "s": "string",
        "i": "integer",
        "n": "number",
        "b": "boolean",
        "e": "enum",
        "c": "enum",
        "a": "json",
        "o": "json",
        "untyped": "json",
    }
    s = fields["s"]
    assert (s.label, s.description, s.required, s.path) == (
        "S title",
        "about s",
        True,
        "parameters.s",
    )
    assert s.input_id == "field-parameters-s"
    assert fields["i"].label == "i"  # no title: the name
    assert (fields["i"].minimum, fields["i"].maximum) == (1, 9)
    assert fields["e"].options == [('"a"', "a"), ("2", "2")]
    assert fields["c"].options == [('"only"', "only")]
    assert fields["b"].has_value and fields["b"].text == "true"
    assert not fields["n"].has_value and fields["n"].text == ""


def test_values_win_over_defaults_and_json_is_shown_indented() -> None:
    schema = {
        "properties": {
            "x": {"type": "integer", "default": 1},
            "tags": {"type": "array", "default": []},
        }
    }
    fields = by_name(schema, values={"tags": ["a"]})
    assert fields["x"].text == "1" and fields["x"].has_default
    assert fields["tags"].text == '[\n  "a"\n]'
    assert fields["tags"].default_text == "[]"


def test_nullable_forms_refs_and_type_lists() -> None:
    schema = {
        "properties": {
            "opt": {
                "anyOf": [{"type": "integer"}, {"type": "null"}],
                "title": "Opt",
                "default": None,
            },
            "listed": {"type": ["string", "null"]},
            "color": {"$ref": "#/$defs/Color", "default": "red"},
            "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "$defs": {"Color": {"title": "Color", "enum": ["red", "blue"]}},
    }
    fields = by_name(schema)
    assert (fields["opt"].kind, fields["opt"].nullable, fields["opt"].label) == (
        "integer",
        True,
        "Opt",
    )
    assert fields["opt"].type_text == "integer or null"
    assert (fields["listed"].kind, fields["listed"].nullable) == ("string", True)
    assert fields["color"].kind == "enum" and fields["color"].label == "Color"
    assert fields["color"].json_value == '"red"'
    assert fields["either"].kind == "json" and not fields["either"].nullable


def test_a_block_type_makes_a_picker_of_that_types_blocks() -> None:
    variables = CLOUD_RUN_JOB_TEMPLATE["variables"]
    assert block_types_of(variables) == ["gcp-credentials"]
    fields = by_name(variables, blocks={"gcp-credentials": ["a", "b"], "other": ["x"]})
    credentials = fields["credentials"]
    assert credentials.kind == "block" and credentials.nullable
    assert [c.text for c in credentials.blocks] == ["gcp-credentials/a", "gcp-credentials/b"]
    assert credentials.blocks[0].json == '"gcp-credentials/a"'
    assert fields["launch_stage"].kind == "enum"
    assert fields["keep_job"].kind == "boolean" and not fields["keep_job"].nullable


def test_missing_required_ignores_ones_with_values_or_defaults() -> None:
    schema = {
        "properties": {"a": {}, "b": {"default": 1}, "c": {}},
        "required": ["a", "b", "c"],
    }
    assert missing_required(schema, {"c": 0}) == ["a"]
    assert missing_required({}, {}) == []
    assert schema_fields({"properties": "nonsense"}) == []
    assert schema_fields(None) == []
