"""Flow runs: the filtered, keyset-paginated list `/runs` and one run `/runs/{id}`.

Bad query values (a cursor, a state, a date, an id) get a 400 page saying what
is wrong, never a 500. Both pages are live: probes `runs` and `run:<id>`, and the
run's log lines come over the `logs:<id>` feed.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.states import TERMINAL_TYPES, StateType, utcnow
from skyrun.server.api.deps import reading
from skyrun.server.db import flow_runs, ui_runs
from skyrun.server.errors import NotFound
from skyrun.server.ui.events import feed, probe
from skyrun.server.ui.guard import require_viewer
from skyrun.server.ui.markdown import cell, render_markdown, table_rows
from skyrun.server.ui.render import SECURITY_HEADERS, duration, page

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_viewer)])

STATE_TYPES = [t.value for t in StateType]
MAX_TEXT_FILTER = 200
LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
CANNOT_CANCEL = {t.value for t in TERMINAL_TYPES} | {StateType.CANCELLING.value}
RETRYABLE = {StateType.FAILED.value, StateType.CRASHED.value, StateType.CANCELLED.value}
# Log ids are 64-bit: a larger cursor from a client must not reach the database.
MAX_LOG_ID = 2**63 - 1


class BadQuery(ValueError):
    """A query value the page cannot use; the message says which and why."""


def level_name(level: int) -> str:
    return LEVELS.get(level) or logging.getLevelName(level)


def bad_request(request: Request, message: str, status_code: int = 400) -> Response:
    heading = "Not found" if status_code == 404 else "Cannot show that"
    return page(request, "error.html", status_code=status_code, heading=heading, message=message)


def _text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    if len(value) > MAX_TEXT_FILTER:
        raise BadQuery(f"the {name} filter is longer than {MAX_TEXT_FILTER} characters")
    return value or None


def _time(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    try:
        return _utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        raise BadQuery(
            f"{name}={value!r} is not a date and time; use e.g. 2026-12-02T09:30 (UTC)"
        ) from None


def _utc(when: datetime) -> datetime:
    """`when` in UTC (taken as UTC without a zone); OverflowError at the ends of time."""
    return when.replace(tzinfo=UTC) if when.utcoffset() is None else when.astimezone(UTC)


def parse_cursor(value: str) -> ui_runs.Cursor:
    created, _, run_id = value.partition(",")
    try:
        return ui_runs.Cursor(_utc(datetime.fromisoformat(created)), uuid.UUID(run_id))
    except (ValueError, OverflowError):
        raise BadQuery(
            f"before={value!r} is not a page cursor (it is made by the Next page link); "
            "start again from the first page"
        ) from None


def format_cursor(cursor: ui_runs.Cursor) -> str:
    return f"{cursor.created.isoformat()},{cursor.id}"


def parse_filter(request: Request) -> ui_runs.RunFilter:
    states = []
    for value in request.query_params.getlist("state"):
        for name in value.split(","):
            if not name.strip():
                continue
            state = name.strip().upper()
            if state not in STATE_TYPES:
                raise BadQuery(f"unknown state {name!r}; use one of {', '.join(STATE_TYPES)}")
            states.append(state)
    return ui_runs.RunFilter(
        state_types=tuple(dict.fromkeys(states)),
        flow_name=_text(request, "flow"),
        deployment_name=_text(request, "deployment"),
        work_pool_name=_text(request, "pool"),
        tag=_text(request, "tag"),
        start_after=_time(request, "start_after"),
        start_before=_time(request, "start_before"),
    )


# The list's text and time filters, echoed back into the form.
_TEXT_FIELDS = ("flow", "deployment", "pool", "tag", "start_after", "start_before")


def _filter_query(request: Request) -> list[tuple[str, str]]:
    """The list's query without its cursor and fragment (for the pager's links)."""
    return [
        (k, v) for k, v in request.query_params.multi_items() if k not in ("before", "fragment")
    ]


@router.get("/runs")
async def runs_list(request: Request) -> Response:
    try:
        run_filter = parse_filter(request)
        raw_cursor = request.query_params.get("before")
        before = parse_cursor(raw_cursor) if raw_cursor else None
    except BadQuery as exc:
        return bad_request(request, str(exc))
    async with reading(request) as session:
        result = await ui_runs.list_runs(session, run_filter, before)
    query = _filter_query(request)
    next_url = None
    if result.next_cursor is not None:
        next_url = "/runs?" + urlencode([*query, ("before", format_cursor(result.next_cursor))])
    first_url = ("/runs?" + urlencode(query)) if before is not None else None
    return page(
        request,
        "runs/list.html",
        runs=result.rows,
        filter=run_filter,
        state_types=STATE_TYPES,
        cannot_cancel=CANNOT_CANCEL,
        next_url=next_url,
        first_url=first_url,
        values={k: request.query_params.get(k, "") for k in _TEXT_FIELDS},
        now=utcnow(),
    )


@probe("runs")
async def runs_probe(session: AsyncSession, _: str) -> object:
    return await ui_runs.runs_fingerprint(session)


# -- one run ------------------------------------------------------------------


def parse_run_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadQuery(f"{value!r} is not a flow run id (a UUID)") from None


class GanttRow(NamedTuple):
    """One task run's line on the timeline, ready to print.

    A tuple the template unpacks in its loop: a page has 1,000 rows, and attribute
    lookups and filters per row were most of the tab's rendering time. `style` places
    the bar in percent of the run's span; `title` is None for a task run that never
    started (it shows `label` instead of a bar).
    """

    name: str
    fill: str
    style: str
    title: str | None
    label: str


@dataclass
class Gantt:
    """Task-run bars placed in percent of the run's span."""

    rows: list[GanttRow]
    start: datetime | None
    end: datetime | None


def _unstarted(bar: ui_runs.TaskBar) -> GanttRow:
    return GanttRow(bar.name, "none", "", None, bar.state_name or bar.state_type or "no state")


def build_gantt(timeline: ui_runs.Timeline, now: datetime) -> Gantt:
    """Bars in percent of the span of all the run's task runs (the same scale on every page).

    A thousand rows a page: everything a row prints is worked out here, once, so the
    template does no lookups or filters per row (rendering was half the tab's time).
    """
    start = timeline.first_start
    if start is None:
        return Gantt([_unstarted(bar) for bar in timeline.bars], None, None)
    end = max(timeline.last_end or start, start)
    if timeline.running_since is not None:
        end = max(end, now)
    span = max((end - start).total_seconds(), 0.001)
    rows = []
    for bar in timeline.bars:
        if bar.start_time is None:
            rows.append(_unstarted(bar))
            continue
        finish = min(bar.end_time or now, end)
        seconds = (finish - bar.start_time).total_seconds()
        left = min(max((bar.start_time - start).total_seconds() / span * 100, 0.0), 99.75)
        width = max(seconds / span * 100, 0.25)
        width = round(min(width, 100 - left), 3)
        state = bar.state_name or bar.state_type
        rows.append(
            GanttRow(
                bar.name,
                (bar.state_type or "none").lower(),
                f"left: {round(left, 3)}%; width: {width}%",
                f"{bar.name}: {state}, {duration(max(seconds, 0.0))}",
                "",
            )
        )
    return Gantt(rows, start, end)


def artifact_view(artifact: Any) -> dict[str, Any]:
    """What the Artifacts tab shows of one artifact: sanitised HTML parts, escaped cells."""
    view: dict[str, Any] = {"artifact": artifact, "kind": artifact.type}
    data = artifact.data
    view["description"] = render_markdown(artifact.description) if artifact.description else None
    if artifact.type == "markdown":
        view["html"] = render_markdown(data if isinstance(data, str) else str(data))
    elif artifact.type == "table":
        headers, rows = table_rows(data)
        view["headers"] = headers
        view["rows"] = [[cell(value) for value in row] for row in rows]
    elif artifact.type == "link":
        link = data.get("link") if isinstance(data, dict) else data
        text = data.get("link_text") if isinstance(data, dict) else None
        link = str(link or "")
        view["href"] = link if link.lower().startswith(("http://", "https://")) else None
        view["link_text"] = text or link
    elif artifact.type == "progress":
        try:
            value = float(data)
        except (TypeError, ValueError):
            value = 0.0
        view["progress"] = max(0.0, min(value, 100.0))
    else:
        view["kind"] = "other"
    return view


# The run page's tabs, in order. The first response holds the header and the selected
# tab's panel only; runs.js fetches another panel (`?fragment=NAME`) when its tab opens.
TABS = ("overview", "tasks", "subflows", "logs", "artifacts")
TAB_LABELS = {
    "overview": "Overview",
    "tasks": "Task runs",
    "subflows": "Subflow runs",
    "logs": "Logs",
    "artifacts": "Artifacts",
}
SECTIONS = ("header", *TABS)


class LogRow(NamedTuple):
    """One line of the Logs tab, ready to print (500 a tab: unpacked, no filters per line)."""

    level: int
    level_name: str
    css: str
    iso: str
    shown: str
    logger: str
    message: str


def log_rows(lines: list[ui_runs.LogLine]) -> list[LogRow]:
    """The tab's lines with their level names and times worked out once each."""
    rows = []
    names: dict[int, tuple[str, str]] = {}
    for line in lines:
        if line.level not in names:
            name = level_name(line.level)
            # The class the live lines get in runs.js: letters, digits and dashes only.
            names[line.level] = (name, re.sub(r"[^a-z0-9-]", "", name.lower()))
        name, css = names[line.level]
        when = line.timestamp.astimezone(UTC)
        # What render.timestamp prints, without a strftime a line.
        iso = when.isoformat()
        shown = f"{iso[:10]} {iso[11:19]} UTC"
        rows.append(LogRow(line.level, name, css, iso, shown, line.name, line.message))
    return rows


def selected_tab(request: Request) -> str:
    """The tab a link asks for (`?tab=logs`); a timeline page (`?task_offset=`) is Task runs.

    An unknown tab is ignored (Overview), like the hash the page's script keeps.
    """
    wanted = request.query_params.get("tab", "").strip().lower()
    if wanted in TABS:
        return wanted
    if request.query_params.get("task_offset"):
        return "tasks"
    return "overview"


def parse_task_offset(request: Request) -> int:
    value = request.query_params.get("task_offset", "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) > ui_runs.MAX_TIMELINE_OFFSET:
        raise BadQuery(
            f"task_offset={value!r} is not a task-run position (a whole number from 0 to "
            f"{ui_runs.MAX_TIMELINE_OFFSET})"
        )
    return int(value)


def _task_pages(timeline: ui_runs.Timeline) -> dict[str, Any]:
    """Links to the timeline's previous and next pages (the tab kept in the hash)."""
    size = ui_runs.TIMELINE_PAGE
    shown_to = timeline.offset + len(timeline.bars)
    pages: dict[str, Any] = {
        "first": timeline.offset + 1,
        "last": shown_to,
        "prev": None,
        "next": None,
    }
    if timeline.offset > 0:
        pages["prev"] = f"?task_offset={max(timeline.offset - size, 0)}#tasks"
    if shown_to < timeline.total:
        pages["next"] = f"?task_offset={shown_to}#tasks"
    return pages


async def _run_context(
    session: AsyncSession, run_id: uuid.UUID, parts: set[str], task_offset: int = 0
) -> dict[str, Any]:
    """What the run page's parts need; a fragment refresh loads only its own part."""
    run = await flow_runs.read_flow_run(session, run_id)
    now = utcnow()
    context: dict[str, Any] = {"run": run, "now": now, "run_seconds": ui_runs.run_seconds(run, now)}
    state_type = run.state.type.value if run.state else None
    context["can_cancel"] = state_type is not None and state_type not in CANNOT_CANCEL
    context["can_retry"] = state_type in RETRYABLE and run.deployment_id is not None
    if "overview" in parts:
        context["states"] = await flow_runs.read_flow_run_states(session, run_id)
    if "tasks" in parts:
        timeline = await ui_runs.task_timeline(session, run_id, task_offset)
        context["timeline"] = timeline
        context["gantt"] = build_gantt(timeline, now)
        context["task_pages"] = _task_pages(timeline)
        order = [*STATE_TYPES, "UNKNOWN"]
        context["task_counts"] = [(s, timeline.counts[s]) for s in order if s in timeline.counts]
    if "subflows" in parts:
        context["subflows"] = await ui_runs.subflow_runs(session, run_id)
    if "artifacts" in parts:
        context["artifacts"] = [
            artifact_view(a) for a in await ui_runs.run_artifacts(session, run_id)
        ]
    if "logs" in parts:
        lines = await ui_runs.log_tail(session, run_id)
        context["log_lines"] = log_rows(lines)
        context["log_cursor"] = max((line.id for line in lines), default=0)
        context["log_tail_limit"] = ui_runs.LOG_TAIL
    elif "header" in parts and "tabs" in parts:
        # The Logs tab is not in this response: the live stream still starts after the
        # newest line, and the tab, once fetched, adds what came after its own lines.
        context["log_cursor"] = await ui_runs.last_log_id(session, run_id)
    return context


@router.get("/runs/{run_id}")
async def run_detail(request: Request, run_id: str) -> Response:
    try:
        parsed = parse_run_id(run_id)
        task_offset = parse_task_offset(request)
    except BadQuery as exc:
        return bad_request(request, str(exc))
    fragment = request.query_params.get("fragment")
    selected = selected_tab(request)
    if fragment is None:
        parts = {"header", "tabs", selected}
    else:
        # An unknown fragment renders as nothing: read no more than the run.
        parts = {fragment} if fragment in SECTIONS else set()
    try:
        async with reading(request) as session:
            context = await _run_context(session, parsed, parts, task_offset)
    except NotFound:
        return bad_request(request, f"There is no flow run {parsed}.", 404)
    return page(
        request,
        "runs/detail.html",
        levels=LEVELS,
        tabs=[(name, TAB_LABELS[name]) for name in TABS],
        selected=selected,
        **context,
    )


@router.get("/runs/{run_id}/logs.txt")
async def run_logs_text(request: Request, run_id: str) -> Response:
    """Every log line of the run as text, streamed in batches."""
    try:
        parsed = parse_run_id(run_id)
    except BadQuery as exc:
        return bad_request(request, str(exc))
    database = request.app.state.database
    async with reading(request) as session:
        try:
            run = await flow_runs.read_flow_run_row(session, parsed)
        except NotFound:
            return bad_request(request, f"There is no flow run {parsed}.", 404)
        name = run.name

    async def lines() -> AsyncIterator[bytes]:
        async for batch in ui_runs.iterate_logs(database, parsed):
            yield "".join(
                f"{line.timestamp.astimezone(UTC).isoformat()} {level_name(line.level):<8} "
                f"{line.name}: {line.message}\n"
                for line in batch
            ).encode()

    safe_name = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "run"
    headers = {
        "X-Content-Type-Options": SECURITY_HEADERS["X-Content-Type-Options"],
        "Content-Disposition": f'attachment; filename="{safe_name}-logs.txt"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(lines(), media_type="text/plain; charset=utf-8", headers=headers)


@probe("run")
async def run_probe(session: AsyncSession, argument: str) -> object:
    try:
        run_id = uuid.UUID(argument)
    except ValueError:
        return None
    return await ui_runs.run_fingerprint(session, run_id)


# The run page's one stream carries both (a browser allows few connections per site):
# `change` when the run's fingerprint moves, and its new log lines.
@feed("run")
async def logs_feed(
    session: AsyncSession, argument: str, cursor: Any
) -> tuple[list[tuple[str, Any]], Any]:
    """New log lines of a run after the cursor (the last line id the page has)."""
    try:
        run_id = uuid.UUID(argument)
    except ValueError:
        return [], cursor
    try:
        after = min(max(int(cursor or 0), 0), MAX_LOG_ID)
    except (TypeError, ValueError):
        # An unreadable cursor (a hand-made Last-Event-ID): go on from the newest line,
        # which the page showed when it loaded, rather than never sending a line again.
        after = await ui_runs.last_log_id(session, run_id)
    lines = await ui_runs.logs_after(session, run_id, after)
    if not lines:
        return [], after
    data = [
        {
            "id": line.id,
            "level": line.level,
            "level_name": level_name(line.level),
            "timestamp": line.timestamp.isoformat(),
            "name": line.name,
            "message": line.message,
        }
        for line in lines
    ]
    return [("lines", data)], lines[-1].id
