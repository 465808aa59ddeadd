"""The dashboard `/`: runs by state over the last day, failures, late runs, pools and workers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.states import StateType, utcnow
from skyrun.server.api.deps import reading
from skyrun.server.db import ui_dashboard
from skyrun.server.ui.events import probe
from skyrun.server.ui.guard import require_viewer
from skyrun.server.ui.render import page

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_viewer)])

# The chart's drawing box (the SVG scales to its container).
CHART_WIDTH = 720
CHART_HEIGHT = 180
CHART_TOP = 12
CHART_BOTTOM = 24
# Stacked bottom to top in this order.
STACK_ORDER = [t.value for t in StateType] + ["NONE"]


@dataclass
class Segment:
    state_type: str
    count: int
    y: float
    height: float


@dataclass
class Bar:
    hour: datetime
    x: float
    width: float
    total: int
    segments: list[Segment]


@dataclass
class Chart:
    bars: list[Bar]
    peak: int
    totals: dict[str, int]
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    baseline: int = CHART_HEIGHT - CHART_BOTTOM


def build_chart(counts: dict[str, dict[str, int]], hours: list[datetime]) -> Chart:
    """Stacked bars, one per hour, scaled to the busiest hour."""
    peak = max((sum(counts.get(ui_dashboard.hour_key(h), {}).values()) for h in hours), default=0)
    plot = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    slot = CHART_WIDTH / max(len(hours), 1)
    bars: list[Bar] = []
    totals: dict[str, int] = {}
    for index, hour in enumerate(hours):
        by_state = counts.get(ui_dashboard.hour_key(hour), {})
        y = float(CHART_HEIGHT - CHART_BOTTOM)
        segments = []
        for state_type in STACK_ORDER:
            count = by_state.get(state_type, 0)
            if not count:
                continue
            totals[state_type] = totals.get(state_type, 0) + count
            height = plot * count / peak
            y -= height
            segments.append(Segment(state_type, count, round(y, 2), round(height, 2)))
        bars.append(
            Bar(
                hour,
                round(index * slot + 2, 2),
                round(slot - 4, 2),
                sum(by_state.values()),
                segments,
            )
        )
    return Chart(bars, peak, totals)


@router.get("/")
async def dashboard(request: Request) -> Response:
    now = utcnow()
    hours = ui_dashboard.hours(now)
    async with reading(request) as session:
        counts = await ui_dashboard.runs_by_hour(session, hours[0], hours[-1] + timedelta(hours=1))
        failures = await ui_dashboard.recent_failures(session)
        late = await ui_dashboard.late_runs(session)
        pools = await ui_dashboard.pools_with_workers(session)
        workers = await ui_dashboard.online_workers(session)
    return page(
        request,
        "dashboard.html",
        chart=build_chart(counts, hours),
        failures=failures,
        late=late,
        pools=pools,
        workers=workers,
        now=now,
    )


@probe("dashboard")
async def dashboard_probe(session: AsyncSession, _: str) -> object:
    return await ui_dashboard.dashboard_fingerprint(session)
