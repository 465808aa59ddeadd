"""The dashboard on SQLite and PostgreSQL: the runs-by-state chart, failures with their
messages, late runs, pools with their workers, a fixed number of queries, the live probe."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from skyrun.server.ui.pages import dashboard

HTML = {"Accept": "text/html"}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text[:2000]}"
    return response.json() if "json" in response.headers.get("content-type", "") else response.text


async def seed(client: httpx.AsyncClient, runs: int = 3) -> dict[str, Any]:
    flow_id = ok(await client.post("/api/flows", json={"name": "etl"}))["id"]
    made: dict[str, Any] = {"completed": [], "failed": None, "late": None}

    async def new_run(name: str, **fields: Any) -> str:
        body = {"flow_id": flow_id, "name": name, **fields}
        return ok(await client.post("/api/flow_runs", json=body), 201)["id"]

    async def move(run_id: str, state: dict[str, Any]) -> None:
        ok(await client.post(f"/api/flow_runs/{run_id}/set_state", json={"state": state}))

    for n in range(runs):
        run_id = await new_run(f"done-{n}")
        await move(run_id, {"type": "RUNNING"})
        await move(run_id, {"type": "COMPLETED"})
        made["completed"].append(run_id)
    made["failed"] = await new_run("broken")
    await move(made["failed"], {"type": "RUNNING"})
    await move(made["failed"], {"type": "FAILED", "message": "KeyError: 'city' <b>"})
    overdue = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    made["late"] = await new_run(
        "overdue", state={"type": "SCHEDULED", "name": "Late", "scheduled_time": overdue}
    )
    ok(await client.post("/api/work_pools", json={"name": "busy", "type": "process"}), 201)
    ok(await client.post("/api/work_pools", json={"name": "idle", "type": "process"}), 201)
    ok(await client.patch("/api/work_pools/idle", json={"is_paused": True}))
    ok(await client.post("/api/work_pools/busy/workers/heartbeat", json={"name": "worker-1"}))
    return made


async def test_the_dashboard_shows_the_chart_failures_late_runs_pools_and_workers(
    client: httpx.AsyncClient,
) -> None:
    made = await seed(client)
    html = ok(await client.get("/", headers=HTML))
    assert '<svg class="chart"' in html
    assert html.count('class="fill-completed"') >= 1
    assert re.search(r"<title>\d\d:00 UTC: \d+ runs?[^<]*3 completed", html)
    assert re.search(r'href="/runs\?state=COMPLETED">completed</a> 3', html)
    assert f'href="/runs/{made["failed"]}">etl / broken</a>' in html
    assert "KeyError: &#39;city&#39; &lt;b&gt;" in html
    assert f'href="/runs/{made["late"]}">etl / overdue</a>' in html
    assert re.search(
        r"busy</a></td>\s*<td>process</td>\s*<td><span class=\"badge status-ready\">ready", html
    )
    assert re.search(
        r"idle</a></td>\s*<td>process</td>\s*<td><span class=\"badge status-paused\">paused", html
    )
    assert "1 of 1" in html and "<strong>worker-1</strong>" in html
    fragment = ok(await client.get("/?fragment=main", headers=HTML))
    assert "<html" not in fragment and '<svg class="chart"' in fragment


async def test_an_empty_dashboard_says_so(client: httpx.AsyncClient) -> None:
    html = ok(await client.get("/", headers=HTML))
    assert "No flow runs were expected to start in the last 24 hours." in html
    assert "No failed or crashed runs." in html and "No work pools yet." in html


async def test_the_dashboard_runs_the_same_queries_however_many_runs(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    engine = app.state.database.engine.sync_engine

    async def count_statements() -> int:
        statements: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            ok(await client.get("/", headers=HTML))
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
        return sum(s.lstrip().upper().startswith("SELECT") for s in statements)

    await seed(client, runs=2)
    few = await count_statements()
    flow_id = ok(await client.post("/api/flows", json={"name": "more"}))["id"]
    for n in range(30):
        body = {"flow_id": flow_id, "name": f"m{n}", "state": {"type": "FAILED"}}
        ok(await client.post("/api/flow_runs", json=body), 201)
    assert await count_statements() == few == 5


async def test_the_probe_moves_when_a_run_or_a_pool_changes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    made = await seed(client, runs=1)

    async def fingerprint() -> Any:
        async with app.state.database.session() as session, session.begin():
            return await dashboard.dashboard_probe(session, "")

    first = await fingerprint()
    assert await fingerprint() == first
    body = {"state": {"type": "RUNNING"}}
    ok(await client.post(f"/api/flow_runs/{made['late']}/set_state", json=body))
    second = await fingerprint()
    assert second != first
    ok(await client.patch("/api/work_pools/busy", json={"is_paused": True}))
    assert await fingerprint() != second


def test_the_chart_stacks_states_scaled_to_the_busiest_hour() -> None:
    hours = [datetime(2026, 1, 1, h, tzinfo=UTC) for h in range(3)]
    counts = {"2026-01-01T00": {"COMPLETED": 2, "FAILED": 2}, "2026-01-01T02": {"RUNNING": 1}}
    chart = dashboard.build_chart(counts, hours)
    assert chart.peak == 4
    first, empty, last = chart.bars
    assert [s.state_type for s in first.segments] == ["COMPLETED", "FAILED"]
    plot = dashboard.CHART_HEIGHT - dashboard.CHART_TOP - dashboard.CHART_BOTTOM
    assert sum(s.height for s in first.segments) == pytest.approx(plot)
    assert first.segments[1].y + first.segments[1].height == pytest.approx(first.segments[0].y)
    assert empty.segments == [] and last.segments[0].height == pytest.approx(plot / 4)
    assert chart.totals == {"COMPLETED": 2, "FAILED": 2, "RUNNING": 1}
