"""Blocks: the catalogue of block types, the documents, a form per type, a block's page.

The forms are generated from each type's JSON schema; they post to /api/blocks
(static/blocks.js builds the body). A secret field's value never reaches a page:
reads are masked (`********`), and the edit form writes the mask back to keep it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from skyrun.blocks.base import MASK, Block
from skyrun.blocks.registry import UnknownBlockType, block_types, get_block_type
from skyrun.server.api.deps import reading
from skyrun.server.db import blocks, ui_blocks
from skyrun.server.db.ui_keyset import parse_cursor
from skyrun.server.errors import NotFound
from skyrun.server.ui.events import probe
from skyrun.server.ui.guard import require_viewer
from skyrun.server.ui.render import page

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_viewer)])
PAGE_SIZE = 50


@dataclass(frozen=True)
class FormField:
    """One input of a block form, read from a property of the type's JSON schema.

    `kind` is the JSON type the value has (string, integer, number, boolean, object,
    array), `choices` an enum's values; `secret` fields are password inputs (strings)
    or textareas (JSON) whose stored value is never shown.
    """

    name: str
    title: str
    description: str
    kind: str
    required: bool
    secret: bool
    nullable: bool
    choices: list[Any] = field(default_factory=list)
    default: Any = None

    @property
    def widget(self) -> str:
        if self.choices:
            return "select"
        if self.kind == "boolean":
            return "checkbox"
        if self.kind in ("object", "array"):
            return "textarea"
        if self.kind in ("integer", "number"):
            return "number"
        return "password" if self.secret else "text"

    def text(self, value: Any) -> str:
        """The field's current value as its input shows it (a secret one as the mask)."""
        if value is None:
            return ""
        if self.secret:
            return MASK
        if self.kind in ("object", "array") or not isinstance(value, str | int | float):
            return json.dumps(value, indent=2, sort_keys=True)
        return str(value)


def _kind(schema: dict[str, Any]) -> tuple[str, bool, dict[str, Any]]:
    """The JSON type of a property, whether it may be null, and the branch that says so."""
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        others = [branch for branch in branches if branch.get("type") != "null"]
        nullable = len(others) < len(branches)
        if len(others) == 1:
            kind, _, chosen = _kind(others[0])
            return kind, nullable, chosen
        return "object", nullable, schema
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        nullable = "null" in kind
        kinds = [k for k in kind if k != "null"]
        return (kinds[0] if len(kinds) == 1 else "object"), nullable, schema
    return str(kind), kind == "null", schema


def schema_fields(schema: dict[str, Any]) -> list[FormField]:
    """The form fields for a block type's JSON schema, in its properties' order."""
    required = set(schema.get("required", []))
    fields = []
    for name, prop in schema.get("properties", {}).items():
        kind, nullable, chosen = _kind(prop)
        fields.append(
            FormField(
                name=name,
                title=str(prop.get("title") or name),
                description=str(prop.get("description") or ""),
                kind=kind,
                required=name in required,
                secret=bool(prop.get("secret")),
                nullable=nullable,
                choices=list(chosen.get("enum", [])),
                default=prop.get("default"),
            )
        )
    return fields


def _type_or_none(slug: str) -> type[Block] | None:
    try:
        return get_block_type(slug)
    except UnknownBlockType:
        return None


def _not_found(request: Request, message: str) -> HTMLResponse:
    return page(request, "error.html", status_code=404, heading="Not found", message=message)


@probe("blocks")
async def blocks_changed(session: Any, _: str) -> Any:
    return await ui_blocks.blocks_fingerprint(session)


@router.get("/blocks")
async def blocks_page(
    request: Request,
    block_type: str | None = Query(None, alias="type"),
    before: str | None = None,
) -> HTMLResponse:
    notice = ""
    try:
        cursor = parse_cursor(before)
    except ValueError:
        cursor, notice = None, "That page link is not valid any more; showing the newest blocks."
    chosen = block_type if block_type and _type_or_none(block_type) is not None else None
    if block_type and chosen is None:
        notice = f"There is no block type {block_type!r}; showing every block."
    async with reading(request) as session:
        documents, next_cursor = await ui_blocks.block_page(session, chosen, cursor, PAGE_SIZE)
    types = block_types()
    return page(
        request,
        "blocks/list.html",
        types=types,
        fields_of={block.block_type: schema_fields(block.json_schema()) for block in types},
        titles={block.block_type: block.title for block in types},
        documents=documents,
        chosen_type=chosen,
        next_cursor=next_cursor.text() if next_cursor else None,
        notice=notice,
    )


@router.get("/blocks/new")
async def new_block_page(request: Request, slug: str = Query("", alias="type")) -> HTMLResponse:
    block = _type_or_none(slug)
    if block is None:
        known = ", ".join(b.block_type for b in block_types())
        what = f"There is no block type {slug!r}" if slug else "Choose a block type"
        return page(
            request,
            "error.html",
            status_code=404 if slug else 400,
            heading="Which block type?",
            message=f"{what}; the types are: {known}. Pick one on the Blocks page.",
        )
    return page(
        request,
        "blocks/form.html",
        block=block,
        fields=schema_fields(block.json_schema()),
        document=None,
    )


@router.get("/blocks/{block_type}/{name}")
async def block_page(request: Request, block_type: str, name: str) -> HTMLResponse:
    block = _type_or_none(block_type)
    try:
        async with reading(request) as session:
            document = await blocks.read_block(session, block_type, name)
    except NotFound:
        return _not_found(request, f"There is no block {block_type}/{name}.")
    fields = schema_fields(block.json_schema()) if block is not None else []
    known = {f.name for f in fields}
    # Data a type no longer declares still shows (masked as stored).
    extra = {key: value for key, value in document.data.items() if key not in known}
    return page(
        request,
        "blocks/detail.html",
        block=block,
        fields=fields,
        document=document,
        extra=extra,
        mask=MASK,
    )
