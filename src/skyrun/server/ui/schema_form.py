"""Form fields described by a JSON schema (a flow's parameters, a pool's template variables).

`schema_fields(schema, values, prefix)` turns an object schema into one `SchemaField`
per property, in order; templates/schema_form.html renders them and
static/schema_form.js reads them back into JSON values. Only what a form can show
is worked out here: the control (text, number, checkbox, select, JSON textarea, block
picker), the label, whether null is allowed, the value to show. Validation stays with
the API, which answers 422s the page shows next to the fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Controls (SchemaField.kind): the JS reads each back to a JSON value by this name.
STRING, INTEGER, NUMBER, BOOLEAN, ENUM, JSON, BLOCK = (
    "string",
    "integer",
    "number",
    "boolean",
    "enum",
    "json",
    "block",
)
_SCALARS = {"string": STRING, "integer": INTEGER, "number": NUMBER, "boolean": BOOLEAN}
_MAX_REF_DEPTH = 20


@dataclass(frozen=True)
class Choice:
    """An option of a select: its value as JSON (what the script parses) and its text."""

    json: str
    text: str


@dataclass
class SchemaField:
    """One property of an object schema as a form control."""

    name: str
    path: str  # the field's name in the form and in a 422's loc ("parameters.lat")
    label: str
    kind: str
    description: str = ""
    required: bool = False
    nullable: bool = False
    has_default: bool = False
    default: Any = None
    value: Any = None  # what the control shows: the given value, else the default
    has_value: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)  # (JSON value, text)
    block_type: str | None = None
    blocks: list[Choice] = field(default_factory=list)  # TYPE/NAME references to pick from
    minimum: float | None = None
    maximum: float | None = None
    types: list[str] = field(default_factory=list)  # the schema's types, for people to read

    @property
    def type_text(self) -> str:
        names = self.types or (["enum"] if self.kind == ENUM else ["any"])
        return " or ".join(names + (["null"] if self.nullable else []))

    @property
    def input_id(self) -> str:
        return "field-" + "".join(c if c.isalnum() else "-" for c in self.path)

    @property
    def text(self) -> str:
        """The value as the control's text: JSON for a JSON control, else the plain string."""
        if not self.has_value or self.value is None:
            return ""
        if self.kind == JSON:
            return json.dumps(self.value, indent=2, ensure_ascii=False)
        if self.kind == BOOLEAN:
            return "true" if self.value else "false"
        return str(self.value)

    @property
    def json_value(self) -> str:
        """The value as JSON (for matching an option of a select)."""
        return json.dumps(self.value if self.has_value else None)

    @property
    def default_text(self) -> str:
        return json.dumps(self.default, ensure_ascii=False)


def _resolve(schema: Any, root: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """The schema with a local `$ref` ("#/$defs/Color") followed; siblings of it kept."""
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/") or depth > _MAX_REF_DEPTH:
        return schema
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part) if isinstance(target, dict) else None
    merged = {
        **_resolve(target, root, depth + 1),
        **{k: v for k, v in schema.items() if k != "$ref"},
    }
    return merged


def _types(
    schema: dict[str, Any], root: Mapping[str, Any]
) -> tuple[list[str], bool, dict[str, Any]]:
    """The non-null types a schema allows, whether it allows null, and the one branch used."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return ([] if declared == "null" else [declared]), declared == "null", schema
    if isinstance(declared, list):
        names = [t for t in declared if isinstance(t, str)]
        return [t for t in names if t != "null"], "null" in names, schema
    for keyword in ("anyOf", "oneOf"):
        branches = schema.get(keyword)
        if isinstance(branches, list):
            resolved = [_resolve(b, root) for b in branches]
            others = [b for b in resolved if b.get("type") != "null"]
            nullable = len(others) < len(resolved)
            if len(others) == 1:
                inner, inner_null, used = _types(others[0], root)
                return inner, nullable or inner_null, {**used, **_annotations(schema)}
            return ["json"], nullable, schema
    return [], False, schema


def _annotations(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: schema[k] for k in ("title", "description", "default") if k in schema}


def _kind(types: list[str], schema: dict[str, Any]) -> str:
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return ENUM
    if "const" in schema:
        return ENUM
    if len(types) == 1 and types[0] in _SCALARS:
        return _SCALARS[types[0]]
    return JSON


def _options(schema: dict[str, Any]) -> list[tuple[str, str]]:
    values = schema["enum"] if isinstance(schema.get("enum"), list) else [schema.get("const")]
    return [(json.dumps(v), v if isinstance(v, str) else json.dumps(v)) for v in values]


def _names(required: Any) -> list[str]:
    """A schema's `required` names: the text ones (a stored schema may hold anything)."""
    return (
        [name for name in required if isinstance(name, str)] if isinstance(required, list) else []
    )


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def schema_fields(
    schema: Mapping[str, Any] | None,
    values: Mapping[str, Any] | None = None,
    prefix: str = "",
    blocks: Mapping[str, Sequence[str]] | None = None,
) -> list[SchemaField]:
    """One field per property of an object schema.

    Args:
        schema: A JSON schema of an object (`properties`, `required`, `$defs`).
        values: Values to show (the deployment's parameters); a property without one
            shows its schema's default.
        prefix: Put before each field's name in its path ("parameters" -> "parameters.lat").
        blocks: Block names by block type: a property whose schema names a
            `block_type` becomes a picker of these (`TYPE/NAME` references).
    """
    root: Mapping[str, Any] = schema if isinstance(schema, Mapping) else {}
    properties = root.get("properties")
    if not isinstance(properties, Mapping):
        return []
    required_names = set(_names(root.get("required")))
    values = values or {}
    fields = []
    for name, raw in properties.items():
        prop = _resolve(raw, root)
        types, nullable, used = _types(prop, root)
        used = _resolve(used, root)
        block_type = prop.get("block_type") if isinstance(prop.get("block_type"), str) else None
        kind = BLOCK if block_type else _kind(types, used)
        has_default = "default" in prop
        has_value = name in values or has_default
        value = values[name] if name in values else prop.get("default")
        item = SchemaField(
            name=str(name),
            path=f"{prefix}.{name}" if prefix else str(name),
            label=str(prop.get("title") or name),
            kind=kind,
            description=str(prop.get("description") or ""),
            required=name in required_names,
            nullable=nullable,
            has_default=has_default,
            default=prop.get("default"),
            value=value,
            has_value=has_value,
            minimum=_number(used.get("minimum")),
            maximum=_number(used.get("maximum")),
            types=[t for t in types if t != "json"],
        )
        if kind == ENUM:
            item.options = _options(used)
        if kind == BLOCK and block_type:
            item.block_type = block_type
            references = [f"{block_type}/{n}" for n in (blocks or {}).get(block_type, [])]
            item.blocks = [Choice(json.dumps(r), r) for r in references]
        fields.append(item)
    return fields


def block_types_of(schema: Mapping[str, Any] | None) -> list[str]:
    """The block types an object schema's properties name (to list their blocks)."""
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(properties, Mapping):
        return []
    # Only text names a block type (a schema may hold anything there; a list is unhashable).
    found = {
        p["block_type"]
        for p in properties.values()
        if isinstance(p, Mapping) and isinstance(p.get("block_type"), str)
    }
    return sorted(found)


def missing_required(schema: Mapping[str, Any] | None, values: Mapping[str, Any]) -> list[str]:
    """Required properties with neither a value in `values` nor a default in the schema."""
    if not isinstance(schema, Mapping):
        return []
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    missing = []
    for name in dict.fromkeys(_names(schema.get("required"))):
        prop = properties.get(name)
        has_default = isinstance(prop, Mapping) and "default" in prop
        if name not in values and not has_default:
            missing.append(str(name))
    return missing
