"""One rule for values typed as text, schema-aware: skyrun.values.parse_value."""

from __future__ import annotations

from typing import Any

import pytest

from skyrun.jobs.process_template import PROCESS_JOB_TEMPLATE
from skyrun.jobs.templates import set_variable_default
from skyrun.values import parse_value

STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}


@pytest.mark.parametrize(
    ("text", "schema", "expected"),
    [
        ("123", None, 123),
        ("true", None, True),
        ('["a", 1]', None, ["a", 1]),
        ("plain words", None, "plain words"),
        ("123", STRING, "123"),
        ("123", NULLABLE_STRING, "123"),
        ("null", NULLABLE_STRING, None),
        ("null", STRING, "null"),
        ('{"a": 1}', STRING, '{"a": 1}'),
        ("123", {"anyOf": [{"type": "string"}, {"type": "null"}]}, "123"),
        ("123", {"enum": ["123", "456"]}, "123"),
        ("123", {"type": ["string", "integer"]}, 123),
        ("123", {"type": "integer"}, 123),
        ("123", {"$ref": "#/definitions/x"}, 123),
        # Not JSON values the API could store: kept as the text typed.
        ("NaN", None, "NaN"),
        ("Infinity", {"type": "number"}, "Infinity"),
        ("1e400", None, "1e400"),
    ],
)
def test_parse_value(text: str, schema: Any, expected: Any) -> None:
    assert parse_value(text, schema) == expected
    assert type(parse_value(text, schema)) is type(expected)


def test_work_pool_set_and_job_variables_read_a_value_alike() -> None:
    # --set and --job-variable once disagreed: ["string", "null"] made `--set` keep
    # neither a string (it was not exactly "string") nor, for --job-variable, a string.
    updated = set_variable_default(PROCESS_JOB_TEMPLATE, "working_dir", "123")
    schema = PROCESS_JOB_TEMPLATE["variables"]["properties"]["working_dir"]
    assert updated["variables"]["properties"]["working_dir"]["default"] == "123"
    assert parse_value("123", schema) == "123"
    updated = set_variable_default(PROCESS_JOB_TEMPLATE, "stream_output", "false")
    assert updated["variables"]["properties"]["stream_output"]["default"] is False
