"""Deployments: the list, a deployment's page (Quick Run, pause/resume) and its Custom Run form.

Runs are created by the page's script through POST /api/deployments/{id}/runs,
which checks parameters and job variables; these pages only read.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.server.api.deps import reading
from skyrun.server.db import deployments, ui_work
from skyrun.server.errors import NotFound
from skyrun.server.ui.events import probe
from skyrun.server.ui.guard import require_viewer
from skyrun.server.ui.render import page
from skyrun.server.ui.schema_form import missing_required, schema_fields

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_viewer)])
CURSOR_SEPARATOR = "~"
PAGE_SIZE = 50


def encode_cursor(cursor: tuple[datetime, uuid.UUID] | None) -> str | None:
    return f"{cursor[0].isoformat()}{CURSOR_SEPARATOR}{cursor[1]}" if cursor else None


def decode_cursor(text: str | None) -> tuple[datetime, uuid.UUID] | None:
    """A `before` cursor from the query string; ValueError when it is not one of ours."""
    if not text:
        return None
    when, sep, ident = text.partition(CURSOR_SEPARATOR)
    if not sep:
        raise ValueError("no separator")
    created = datetime.fromisoformat(when)
    if created.tzinfo is None:
        raise ValueError("no time zone")
    try:
        # In UTC, as stored: an offset at the ends of time would overflow in the driver.
        created = created.astimezone(UTC)
    except OverflowError:
        raise ValueError("a time out of range") from None
    return created, uuid.UUID(ident)


def schedule_text(schedule: dict[str, Any]) -> str:
    """A schedule as one short phrase: 'cron 0 9 * * * (Europe/Paris)', 'every 3600s'."""
    zone = schedule.get("timezone")
    suffix = f" ({zone})" if zone else ""
    if "cron" in schedule:
        return f"cron {schedule['cron']}{suffix}"
    if "interval" in schedule:
        seconds = schedule["interval"]
        if isinstance(seconds, float) and seconds.is_integer():
            seconds = int(seconds)
        return f"every {seconds}s{suffix}"
    if "rrule" in schedule:
        return f"rrule {schedule['rrule']}{suffix}"
    return str(schedule)


def _deployment_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(f"deployment {text!r} not found: that is not a deployment id") from None


@router.get("/deployments")
async def deployments_list(request: Request, before: str | None = None) -> Response:
    notice = ""
    try:
        cursor = decode_cursor(before)
    except ValueError:
        cursor = None
        notice = "That page link is not valid any more; showing the newest deployments."
    async with reading(request) as session:
        rows, next_cursor = await ui_work.deployments_page(session, cursor, PAGE_SIZE)
    next_text = encode_cursor(next_cursor)
    return page(
        request,
        "deployments/list.html",
        rows=rows,
        notice=notice,
        schedule_text=schedule_text,
        next_url=f"/deployments?before={quote(next_text)}" if next_text else None,
        first_url="/deployments" if cursor else None,
    )


async def _deployment_context(session: AsyncSession, deployment_id: uuid.UUID) -> dict[str, Any]:
    row = await deployments.read_deployment_row(session, deployment_id)
    deployment = await deployments.to_schema(session, row)
    schema = deployment.parameter_openapi_schema
    fields = schema_fields(schema, deployment.parameters, prefix="parameters")
    described = {f.name for f in fields}
    return {
        "deployment": deployment,
        "fields": fields,
        # Values the schema does not describe (a flow taking **kwargs, or no schema at all).
        "other_parameters": {k: v for k, v in deployment.parameters.items() if k not in described},
        "missing": missing_required(schema, deployment.parameters),
        "schedule_text": schedule_text,
    }


@router.get("/deployments/{deployment_id}")
async def deployment_detail(request: Request, deployment_id: str) -> Response:
    ident = _deployment_id(deployment_id)
    async with reading(request) as session:
        context = await _deployment_context(session, ident)
        upcoming, recent = await ui_work.deployment_runs(session, ident)
    return page(request, "deployments/detail.html", upcoming=upcoming, recent=recent, **context)


@router.get("/deployments/{deployment_id}/run")
async def deployment_custom_run(request: Request, deployment_id: str) -> Response:
    ident = _deployment_id(deployment_id)
    async with reading(request) as session:
        context = await _deployment_context(session, ident)
    return page(request, "deployments/run.html", **context)


@probe("deployments")
async def _deployments_changed(session: AsyncSession, _: str) -> Any:
    return await ui_work.deployments_fingerprint(session)


@probe("deployment")
async def _deployment_changed(session: AsyncSession, argument: str) -> Any:
    try:
        ident = uuid.UUID(argument)
    except ValueError:
        return None
    return await ui_work.deployment_fingerprint(session, ident)
