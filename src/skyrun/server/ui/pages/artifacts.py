"""Artifacts: the latest version of each key and the unkeyed ones; a key's page with the
artifact rendered (markdown sanitised, tables escaped, links, progress) and its history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from skyrun.server.api.deps import reading
from skyrun.server.db import ui_artifacts
from skyrun.server.db.ui_artifacts import ArtifactRow
from skyrun.server.db.ui_keyset import Cursor, parse_cursor
from skyrun.server.ui.events import probe
from skyrun.server.ui.guard import require_viewer
from skyrun.server.ui.markdown import cell, render_markdown, table_rows
from skyrun.server.ui.render import page

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_viewer)])
PAGE_SIZE = 50
UNKEYED_PAGE_SIZE = 20
HISTORY_PAGE_SIZE = 50
LINK_SCHEMES = frozenset({"http", "https", "mailto"})


@dataclass
class Rendered:
    """An artifact's data ready for its template: one of markdown, table, link, progress, json."""

    kind: str
    html: Markup = field(default_factory=Markup)
    headers: list[str] = field(default_factory=list)
    rows: list[list[Markup]] = field(default_factory=list)
    href: str | None = None
    text: str = ""
    progress: float | None = None
    data: Any = None


def _link(data: Any) -> Rendered:
    url = data.get("link") if isinstance(data, dict) else data
    label = data.get("link_text") if isinstance(data, dict) else None
    url = url if isinstance(url, str) else ""
    # Only web and mail links are links; anything else (javascript:, data:) shows as text.
    scheme = urlsplit(url).scheme.lower() if url else ""
    href = (
        url
        if scheme in LINK_SCHEMES or (url.startswith("/") and not url.startswith("//"))
        else None
    )
    return Rendered(kind="link", href=href, text=str(label or url))


def _progress(data: Any) -> Rendered:
    if isinstance(data, int | float) and not isinstance(data, bool):
        return Rendered(kind="progress", progress=min(max(float(data), 0.0), 100.0))
    return Rendered(kind="json", data=data)


def render_artifact(artifact: ArtifactRow) -> Rendered:
    """What the page shows for `artifact`'s data (never raw HTML from it)."""
    if artifact.type == "markdown" and isinstance(artifact.data, str):
        return Rendered(kind="markdown", html=render_markdown(artifact.data))
    if artifact.type == "table":
        headers, rows = table_rows(artifact.data)
        return Rendered(
            kind="table", headers=headers, rows=[[cell(v) for v in row] for row in rows]
        )
    if artifact.type == "link":
        return _link(artifact.data)
    if artifact.type == "progress":
        return _progress(artifact.data)
    return Rendered(kind="json", data=artifact.data)


def _description(artifact: ArtifactRow | None) -> Markup:
    if artifact is None or not artifact.description:
        return Markup("")
    return render_markdown(artifact.description)


def _cursor(text: str | None) -> tuple[Cursor | None, bool]:
    try:
        return parse_cursor(text), False
    except ValueError:
        return None, True


@probe("artifacts")
async def artifacts_changed(session: Any, _: str) -> Any:
    return await ui_artifacts.artifacts_fingerprint(session)


@router.get("/artifacts")
async def artifacts_page(
    request: Request, before: str | None = None, unkeyed_before: str | None = None
) -> HTMLResponse:
    cursor, bad = _cursor(before)
    unkeyed_cursor, bad_unkeyed = _cursor(unkeyed_before)
    async with reading(request) as session:
        latest, next_cursor = await ui_artifacts.latest_per_key(session, cursor, PAGE_SIZE)
        unkeyed, next_unkeyed = await ui_artifacts.unkeyed(
            session, unkeyed_cursor, UNKEYED_PAGE_SIZE
        )
    return page(
        request,
        "artifacts/list.html",
        latest=latest,
        unkeyed=unkeyed,
        next_cursor=next_cursor.text() if next_cursor else None,
        next_unkeyed=next_unkeyed.text() if next_unkeyed else None,
        notice="That page link is not valid any more; showing the newest artifacts."
        if bad or bad_unkeyed
        else "",
    )


def _not_found(request: Request, message: str) -> HTMLResponse:
    return page(request, "error.html", status_code=404, heading="Not found", message=message)


@router.get("/artifacts/unkeyed/{artifact_id}")
async def unkeyed_artifact_page(request: Request, artifact_id: str) -> HTMLResponse:
    try:
        wanted = uuid.UUID(artifact_id)
    except ValueError:
        return _not_found(request, f"{artifact_id[:100]!r} is not an artifact id.")
    async with reading(request) as session:
        artifact = await ui_artifacts.one(session, wanted)
    if artifact is None:
        return _not_found(request, f"There is no artifact {wanted}.")
    return page(
        request,
        "artifacts/detail.html",
        key=artifact.key,
        shown=artifact,
        rendered=render_artifact(artifact),
        description=_description(artifact),
        versions=[],
        next_cursor=None,
        notice="",
    )


@router.get("/artifacts/{key}")
async def artifact_page(
    request: Request, key: str, version: str | None = None, before: str | None = None
) -> HTMLResponse:
    notice = ""
    cursor, bad = _cursor(before)
    if bad:
        notice = "That page link is not valid any more; showing the newest versions."
    wanted: uuid.UUID | None = None
    if version:
        try:
            wanted = uuid.UUID(version)
        except ValueError:
            notice = f"{version[:100]!r} is not a version id; showing the latest."
    async with reading(request) as session:
        versions, next_cursor = await ui_artifacts.history(session, key, cursor, HISTORY_PAGE_SIZE)
        shown = versions[0] if versions and cursor is None else None
        if wanted is not None:
            chosen = next((v for v in versions if v.id == wanted), None)
            if chosen is None:
                chosen = await ui_artifacts.one(session, wanted)
            if chosen is not None and chosen.key == key:
                shown = chosen
            else:
                notice = f"Version {wanted} is not a version of {key!r}; showing the latest."
    if not versions and cursor is None:
        return _not_found(request, f"There is no artifact with the key {key!r}.")
    return page(
        request,
        "artifacts/detail.html",
        key=key,
        shown=shown,
        rendered=render_artifact(shown) if shown is not None else None,
        description=_description(shown),
        versions=versions,
        next_cursor=next_cursor.text() if next_cursor else None,
        notice=notice,
    )
