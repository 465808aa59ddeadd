"""Block data typed on a command line: `--field KEY=VALUE` and `--file F`.

A value is read as `skyrun.values.parse_value` reads any value typed as text, with
the field's schema (a string field keeps its text; an object field takes JSON).
`@PATH` reads the value from a file, so a service account key goes in as
`--field service_account_info=@key.json`; `@@` at the start stands for a literal `@`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from skyrun.values import parse_value

FILE_PREFIX = "@"


class FieldError(ValueError):
    """A field typed on the command line that cannot be used; the message says why."""


def _field_text(raw: str, field: str) -> str:
    if raw.startswith(FILE_PREFIX + FILE_PREFIX):
        return raw[1:]
    if not raw.startswith(FILE_PREFIX):
        return raw
    path = Path(raw[1:]).expanduser()
    try:
        return path.read_text()
    except OSError as exc:
        raise FieldError(
            f"--field {field}=@{path}: cannot read {path} ({exc.strerror or exc}); "
            "write @@ for a value that starts with @"
        ) from None


def parse_fields(
    assignments: Iterable[str], block_type: str, schema: Mapping[str, Any]
) -> dict[str, Any]:
    """`KEY=VALUE` assignments as block data, each value read with its field's schema.

    Args:
        assignments: The `--field` values as typed.
        block_type: The type's slug, for messages.
        schema: The type's JSON schema (its `properties` name the fields).

    Raises:
        FieldError: Not `KEY=VALUE`, an unknown field, or an unreadable `@FILE`.
    """
    properties = schema.get("properties") or {}
    data: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise FieldError(f"--field takes KEY=VALUE, not {assignment!r}")
        if key not in properties:
            fields = ", ".join(properties) or "none"
            raise FieldError(f"{block_type} has no field {key!r}; its fields are: {fields}")
        data[key] = parse_value(_field_text(raw, key), properties[key])
    return data


def read_data_file(path: Path) -> dict[str, Any]:
    """A block's data from a JSON file holding one object.

    Raises:
        FieldError: Unreadable, not JSON, or not an object; the message names the file.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise FieldError(f"cannot read {path} ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FieldError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise FieldError(f"{path} must hold a JSON object of the block's fields")
    return data
