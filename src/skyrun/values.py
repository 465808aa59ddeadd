"""The one rule for a value typed as text (`--param n=3`, `--set image=repo:1`).

Text becomes the JSON value it spells (`3`, `true`, `["a"]`, `{"k": 1}`) and
otherwise stays text, unless a JSON schema for the value is known and says it is
a string: then the text is kept as typed, so `--job-variable image=123` is the
image "123", not the number 123 (and `null`, for a string that may be null, is null). The CLI's `--param`, `--job-variable`,
`variable set` and `work-pool update --set` all use it.
"""

from __future__ import annotations

import json
from typing import Any

from skyrun.schemas.limits import check_json_value


def is_string_schema(schema: Any) -> bool:
    """Whether `schema` accepts only strings (and perhaps null).

    Understands `type` (a name or a list of names), `enum`/`const` of strings and
    `anyOf`/`oneOf` whose branches all accept only strings.
    """
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind == "string"
    if isinstance(kind, list) and kind:
        return "string" in kind and all(k in ("string", "null") for k in kind)
    if "const" in schema:
        return isinstance(schema["const"], str)
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return all(isinstance(v, str) for v in schema["enum"])
    for combinator in ("anyOf", "oneOf"):
        branches = schema.get(combinator)
        if isinstance(branches, list) and branches:
            real = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
            return bool(real) and all(is_string_schema(b) for b in real)
    return False


def _allows_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    branches = [*schema.get("anyOf", []), *schema.get("oneOf", [])]
    return any(isinstance(b, dict) and b.get("type") == "null" for b in branches)


def parse_value(text: str, schema: Any = None) -> Any:
    """`text` as the value it means: verbatim for a string schema, else JSON if it parses.

    Args:
        text: the value as typed.
        schema: the JSON schema the value must fit, when known.
    """
    if is_string_schema(schema):
        # A nullable string still takes `null`, the one way to type "no value".
        return None if text == "null" and _allows_null(schema) else text
    try:
        # NaN and 1e400 parse, but are not JSON values the API stores: they stay text.
        return check_json_value(json.loads(text))
    except (ValueError, RecursionError):
        return text
