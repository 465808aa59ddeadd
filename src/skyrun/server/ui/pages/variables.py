"""Variables: the list (values as escaped JSON), a form to create or change one, delete.

The form PUTs /api/variables/{name} (static/blocks.js builds the body: the value
as JSON, or as a plain string when "Text" is chosen).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from skyrun.schemas.limits import MAX_NAME_LENGTH
from skyrun.server.api.deps import reading
from skyrun.server.db import ui_blocks, variables
from skyrun.server.db.ui_keyset import parse_cursor
from skyrun.server.errors import NotFound
from skyrun.server.ui.events import probe
from skyrun.server.ui.guard import require_viewer
from skyrun.server.ui.render import page

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_viewer)])
PAGE_SIZE = 50


@probe("variables")
async def variables_changed(session: Any, _: str) -> Any:
    return await ui_blocks.variables_fingerprint(session)


def _as_form(value: Any) -> tuple[str, str]:
    """A value as the form shows it: (text, "json" or "text")."""
    if isinstance(value, str):
        return value, "text"
    return json.dumps(value, indent=2, ensure_ascii=False), "json"


@router.get("/variables")
async def variables_page(
    request: Request,
    before: str | None = None,
    edit: str | None = None,
) -> HTMLResponse:
    notice = ""
    try:
        cursor = parse_cursor(before)
    except ValueError:
        cursor, notice = None, "That page link is not valid any more; showing the newest variables."
    editing = None
    async with reading(request) as session:
        items, next_cursor = await ui_blocks.variable_page(session, cursor, PAGE_SIZE)
        if edit:
            try:
                # No variable has a longer name: do not look one up (nor echo it whole).
                if len(edit) > MAX_NAME_LENGTH:
                    raise NotFound(edit)
                editing = await variables.read_variable(session, edit)
            except NotFound:
                notice = f"There is no variable {edit[:100]!r} to edit; create it below."
    text, kind = _as_form(editing.value) if editing is not None else ("", "json")
    return page(
        request,
        "variables/list.html",
        items=items,
        next_cursor=next_cursor.text() if next_cursor else None,
        notice=notice,
        editing=editing,
        value_text=text,
        value_kind=kind,
    )
