"""Work pools: the list, the create form, and a pool's tabs (overview, template
variables, the raw template, queues, workers).

Changes go through /api/work_pools (the page's script PATCHes the base job
template, which the API validates); these pages only read.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.jobs.types import default_job_template, known_types
from skyrun.server.api.deps import reading
from skyrun.server.db import ui_work, work_pools
from skyrun.server.ui.events import probe
from skyrun.server.ui.guard import require_viewer
from skyrun.server.ui.render import page
from skyrun.server.ui.schema_form import block_types_of, schema_fields

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_viewer)])
TABS = (
    ("overview", "Overview"),
    ("variables", "Template variables"),
    ("advanced", "Advanced"),
    ("queues", "Queues"),
    ("workers", "Workers"),
)


@router.get("/work-pools")
async def work_pools_list(request: Request) -> Response:
    async with reading(request) as session:
        pools = await ui_work.pools_overview(session)
    return page(request, "work_pools/list.html", pools=pools)


@router.get("/work-pools/new")
async def work_pool_new(request: Request, type: str = "") -> Response:
    types = known_types()
    templates = {
        name: json.dumps(template, indent=2)
        for name in types
        if (template := default_job_template(name)) is not None
    }
    chosen = type if type in templates else ("process" if "process" in templates else "")
    return page(request, "work_pools/new.html", types=types, templates=templates, chosen=chosen)


@router.get("/work-pools/{name}")
async def work_pool_detail(request: Request, name: str, tab: str = "overview") -> Response:
    if tab not in dict(TABS):
        tab = "overview"
    async with reading(request) as session:
        row = await work_pools.read_work_pool_row(session, name)
        pool = await work_pools.pool_schema(session, row)
        queues = await work_pools.list_work_queues(session, name)
        workers = await ui_work.pool_workers(session, row.id)
        variables = pool.base_job_template.get("variables")
        variables = variables if isinstance(variables, dict) else {}
        blocks = await ui_work.block_names(session, block_types_of(variables))
    return page(
        request,
        "work_pools/detail.html",
        pool=pool,
        tab=tab,
        tabs=TABS,
        queues=queues,
        workers=workers.shown,
        worker_total=workers.total,
        workers_online=workers.online,
        fields=schema_fields(variables, None, prefix="variables", blocks=blocks),
        template_text=json.dumps(pool.base_job_template, indent=2, ensure_ascii=False),
    )


@probe("work-pools")
async def _pools_changed(session: AsyncSession, _: str) -> Any:
    return await ui_work.pools_fingerprint(session)


@probe("work-pool")
async def _pool_changed(session: AsyncSession, name: str) -> Any:
    return await ui_work.pool_fingerprint(session, name)
