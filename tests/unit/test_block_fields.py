"""`--field KEY=VALUE` and `--file` for blocks: values read with the field's schema, @FILE."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyrun.blocks.fields import FieldError, parse_fields, read_data_file
from skyrun.blocks.gcp import GcpCredentials

SCHEMA = GcpCredentials.json_schema()


def test_values_follow_the_field_schema(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account"}')
    assert parse_fields(
        ["project=123", f"service_account_info=@{key}"], "gcp-credentials", SCHEMA
    ) == {
        "project": "123",  # a string field keeps its text
        "service_account_info": {"type": "service_account"},
    }
    assert parse_fields(["project=@@home"], "gcp-credentials", SCHEMA) == {"project": "@home"}
    assert parse_fields(["project=null"], "gcp-credentials", SCHEMA) == {"project": None}


def test_field_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FieldError, match="gcp-credentials has no field 'projct'; its fields are"):
        parse_fields(["projct=p"], "gcp-credentials", SCHEMA)
    with pytest.raises(FieldError, match="--field takes KEY=VALUE, not 'project'"):
        parse_fields(["project"], "gcp-credentials", SCHEMA)
    with pytest.raises(FieldError, match=r"cannot read .*missing\.json"):
        parse_fields([f"service_account_info=@{tmp_path}/missing.json"], "x", SCHEMA)


def test_data_files(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"project": "p"}')
    assert read_data_file(good) == {"project": "p"}
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "project": }')
    with pytest.raises(FieldError, match=r"bad.json:2:14: not valid JSON \(Expecting value\)"):
        read_data_file(bad)
    bad.write_text("[]")
    with pytest.raises(FieldError, match="must hold a JSON object"):
        read_data_file(bad)
