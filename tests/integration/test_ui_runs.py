"""The flow-run pages of the UI on SQLite and PostgreSQL: filters, keyset pages, one query
per page, a run's tabs, escaping, bad input, the live probes and the log feed, retry."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from processes import TEST_ENCRYPTION_KEY
from skyrun.server.ui.pages import runs as runs_page
from skyrun.settings import Settings

HTML = {"Accept": "text/html"}
SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text[:2000]}"
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.text


async def flow(client: httpx.AsyncClient, name: str) -> str:
    return ok(await client.post("/api/flows", json={"name": name}))["id"]


async def run(client: httpx.AsyncClient, flow_id: str, **fields: Any) -> dict[str, Any]:
    return ok(await client.post("/api/flow_runs", json={"flow_id": flow_id, **fields}), 201)


async def set_state(
    client: httpx.AsyncClient, run_id: str, state_type: str, **fields: Any
) -> dict[str, Any]:
    body = {"state": {"type": state_type, **fields.pop("state", {})}, **fields}
    return ok(await client.post(f"/api/flow_runs/{run_id}/set_state", json=body))


async def deployment_on_pool(client: httpx.AsyncClient, pool: str = "pool") -> dict[str, Any]:
    ok(await client.post("/api/work_pools", json={"name": pool, "type": "process"}), 201)
    return ok(
        await client.post(
            "/api/deployments",
            json={
                "flow_name": "etl",
                "name": "nightly",
                "entrypoint": "f.py:etl",
                "work_pool_name": pool,
            },
        )
    )


def run_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-run-id="([0-9a-f-]+)"', html)


@contextmanager
def counted_statements(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = app.state.database.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


# -- the list -----------------------------------------------------------------------


async def test_the_list_filters_by_state_flow_deployment_pool_tag_and_expected_start(
    client: httpx.AsyncClient,
) -> None:
    etl = await flow(client, "etl")
    other = await flow(client, "other")
    deployment = await deployment_on_pool(client)
    deployed = ok(await client.post(f"/api/deployments/{deployment['id']}/runs", json={}), 201)
    tagged = await run(client, etl, name="tagged", tags=["nightly", "eu"])
    other_run = await run(client, other, name="other-run", tags=["eu-west"])
    finished = await run(client, etl, name="finished")
    await set_state(client, finished["id"], "RUNNING")
    await set_state(client, finished["id"], "COMPLETED")
    later = await run(
        client,
        etl,
        name="later",
        state={"type": "SCHEDULED", "scheduled_time": "2031-01-01T10:00:00Z"},
    )

    async def shown(query: str) -> set[str]:
        return set(run_ids(ok(await client.get(f"/runs?{query}", headers=HTML))))

    everything = {deployed["id"], tagged["id"], other_run["id"], finished["id"], later["id"]}
    assert await shown("") == everything
    assert await shown("state=COMPLETED") == {finished["id"]}
    # A deployment's run starts SCHEDULED.
    scheduled = {deployed["id"], later["id"]}
    assert await shown("state=completed&state=SCHEDULED") == {finished["id"], *scheduled}
    assert await shown("flow=other") == {other_run["id"]}
    assert await shown("deployment=nightly") == {deployed["id"]}
    assert await shown("pool=pool") == {deployed["id"]}
    # A tag matches whole: "eu" is not "eu-west".
    assert await shown("tag=eu") == {tagged["id"]}
    assert await shown("tag=eu-west") == {other_run["id"]}
    assert await shown("tag=none") == set()
    assert await shown("start_after=2030-12-31T00:00") == {later["id"]}
    assert await shown("start_before=2030-12-31T00:00") == everything - {later["id"]}
    # Only runs that can still be cancelled get a checkbox.
    html = ok(await client.get("/runs", headers=HTML))
    assert f'id="select-{tagged["id"]}"' in html
    assert f'id="select-{finished["id"]}"' not in html


async def test_keyset_pages_of_fifty_cover_every_run_once(client: httpx.AsyncClient) -> None:
    etl = await flow(client, "etl")
    created = [(await run(client, etl, name=f"run-{n:02d}"))["id"] for n in range(60)]
    first = ok(await client.get("/runs?flow=etl", headers=HTML))
    page_one = run_ids(first)
    assert page_one == list(reversed(created))[:50]
    match = re.search(r'href="(/runs\?[^"]+)" rel="next"', first)
    assert match is not None
    next_url = match.group(1).replace("&amp;", "&")
    assert "flow=etl" in next_url
    second = ok(await client.get(next_url, headers=HTML))
    assert run_ids(second) == list(reversed(created))[50:]
    assert 'rel="next"' not in second
    assert 'rel="prev"' in second


async def test_the_list_runs_the_same_statements_for_5_runs_as_for_60(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    etl = await flow(client, "etl")
    deployment = await deployment_on_pool(client)
    for n in range(5):
        await run(client, etl, name=f"a-{n}", tags=["t"])

    async def statements_for_list() -> int:
        with counted_statements(app) as statements:
            ok(await client.get("/runs?tag=t", headers=HTML))
        return len(statements)

    with_five = await statements_for_list()
    for n in range(55):
        await run(client, etl, name=f"b-{n}", tags=["t"])
        if n % 5 == 0:
            ok(
                await client.post(
                    f"/api/deployments/{deployment['id']}/runs", json={"tags": ["t"]}
                ),
                201,
            )
    assert await statements_for_list() == with_five
    # The page itself is one SELECT (names joined in), whatever the number of rows.
    with counted_statements(app) as statements:
        ok(await client.get("/runs", headers=HTML))
    assert sum(s.lstrip().upper().startswith("SELECT") for s in statements) == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("before=not-a-cursor", "is not a page cursor"),
        (f"before=2026-01-01T00:00:00,{'z' * 8}", "is not a page cursor"),
        ("state=FINISHED", "unknown state &#39;FINISHED&#39;"),
        ("start_after=yesterday", "is not a date and time"),
        ("flow=" + "x" * 201, "longer than 200 characters"),
    ],
)
async def test_bad_list_queries_get_a_clear_400_page(
    client: httpx.AsyncClient, query: str, message: str
) -> None:
    response = await client.get(f"/runs?{query}", headers=HTML)
    assert response.status_code == 400
    assert message in response.text
    assert "text/html" in response.headers["content-type"]


async def test_bad_run_ids_get_a_page_not_a_500(client: httpx.AsyncClient) -> None:
    bad = await client.get("/runs/not-a-uuid", headers=HTML)
    assert bad.status_code == 400
    assert "is not a flow run id" in bad.text
    missing_id = uuid.uuid4()
    missing = await client.get(f"/runs/{missing_id}", headers=HTML)
    assert missing.status_code == 404
    assert f"There is no flow run {missing_id}" in missing.text
    assert (await client.get(f"/runs/{missing_id}/logs.txt")).status_code == 404
    assert (await client.get("/runs/x/logs.txt")).status_code == 400


# -- one run ------------------------------------------------------------------------


async def test_the_run_page_shows_history_parameters_tasks_subflows_logs_and_artifacts(
    client: httpx.AsyncClient,
) -> None:
    etl = await flow(client, "etl")
    parent = await run(client, etl, name="parent", parameters={"city": "Oslo", "days": 3})
    child = await run(client, etl, name="child-run", parent_flow_run_id=parent["id"])
    await set_state(client, parent["id"], "RUNNING")
    ok(
        await client.post(
            f"/api/flow_runs/{parent['id']}/infrastructure",
            json={"infrastructure_id": "projects/p/locations/r/jobs/j/executions/j-abc12"},
        )
    )
    now = datetime.now(UTC)
    task_runs = [
        {
            "id": str(uuid.uuid4()),
            "flow_run_id": parent["id"],
            "name": f"fetch-{n}",
            "task_key": "fetch",
            "start_time": (now + timedelta(seconds=n)).isoformat(),
            "end_time": (now + timedelta(seconds=n + 2)).isoformat(),
            "states": [
                {
                    "type": "FAILED" if n == 7 else "COMPLETED",
                    "name": "x",
                    "timestamp": now.isoformat(),
                }
            ],
        }
        for n in range(1200)
    ]
    logs = [
        {
            "flow_run_id": parent["id"],
            "name": "etl",
            "level": level,
            "message": f"line {n}",
            "timestamp": now.isoformat(),
        }
        for n, level in enumerate([20, 30, 40])
    ]
    ok(await client.post("/api/batch", json={"task_runs": task_runs, "logs": logs}))
    ok(
        await client.post(
            "/api/artifacts",
            json={
                "type": "table",
                "key": "weather",
                "data": [{"city": "Oslo", "temp": 3}],
                "flow_run_id": parent["id"],
            },
        ),
        201,
    )
    ok(
        await client.post(
            "/api/artifacts", json={"type": "progress", "data": 40, "flow_run_id": parent["id"]}
        ),
        201,
    )
    ok(
        await client.post(
            "/api/artifacts",
            json={
                "type": "link",
                "data": {"link": "https://example.com/r", "link_text": "report"},
                "flow_run_id": parent["id"],
            },
        ),
        201,
    )

    # The page opens on Overview; each tab's panel is in the page a link opens on it.
    html = ok(await client.get(f"/runs/{parent['id']}", headers=HTML))
    assert 'role="tablist"' in html and html.count('role="tab"') == 5
    assert "projects/p/locations/r/jobs/j/executions/j-abc12" in html
    assert "<dt>Cloud Run job</dt><dd><code>j</code></dd>" in html
    assert "<dt>Cloud Run execution</dt><dd><code>j-abc12</code></dd>" in html
    assert "&#34;city&#34;: &#34;Oslo&#34;" in html
    assert 'id="cancel-run"' in html
    # A run of no deployment has nothing to run it again.
    assert 'id="retry-run"' not in html
    tab = ok(await client.get(f"/runs/{parent['id']}?tab=tasks", headers=HTML))
    assert tab.count('class="gantt-row"') == 1000
    assert "1200 task runs" in tab
    assert re.search(r"state-failed\">failed</span> 1<", tab)
    tab = ok(await client.get(f"/runs/{parent['id']}?tab=subflows", headers=HTML))
    assert f'href="/runs/{child["id"]}">child-run</a>' in tab
    tab = ok(await client.get(f"/runs/{parent['id']}?tab=logs", headers=HTML))
    assert "line 0" in tab and "line 2" in tab
    assert tab.count(f'data-cursor="{_last_log_id(tab)}"') == 2
    tab = ok(await client.get(f"/runs/{parent['id']}?tab=artifacts", headers=HTML))
    assert "<td>Oslo</td>" in tab and '<th scope="col">temp</th>' in tab
    assert '<progress max="100" value="40.0"' in tab
    assert '<a href="https://example.com/r" rel="noopener noreferrer nofollow">report</a>' in tab

    tasks = ok(await client.get(f"/runs/{parent['id']}?fragment=tasks", headers=HTML))
    assert tasks.count('class="gantt-row"') == 1000 and "<html" not in tasks
    assert "Task runs 1 to 1000 of 1200" in tasks
    assert 'href="?task_offset=1000#tasks" rel="next"' in tasks
    later = ok(await client.get(f"/runs/{parent['id']}?task_offset=1000", headers=HTML))
    assert later.count('class="gantt-row"') == 200 and "fetch-1000<" in later
    assert 'href="?task_offset=0#tasks" rel="prev"' in later and 'rel="next"' not in later
    # Every page draws on the scale of all the task runs (1,201 s): task 1000 starts at 1,000 s.
    assert re.findall(r"left: ([\d.]+)%; width: ([\d.]+)%", later)[0] == ("83.264", "0.25")
    for bad in ("-1", "x", "99999999999"):
        page = await client.get(f"/runs/{parent['id']}?task_offset={bad}", headers=HTML)
        assert page.status_code == 400 and "is not a task-run position" in page.text
    header = ok(await client.get(f"/runs/{parent['id']}?fragment=header", headers=HTML))
    assert "state-running" in header and "gantt" not in header

    text = await client.get(f"/runs/{parent['id']}/logs.txt")
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert "attachment" in text.headers["content-disposition"]
    lines = text.text.splitlines()
    assert [line.split()[1] for line in lines] == ["INFO", "WARNING", "ERROR"]
    assert lines[2].endswith("etl: line 2")


async def test_the_run_page_holds_the_header_and_the_selected_tab_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    etl = await flow(client, "etl")
    big = await run(client, etl, name="big")
    start = datetime.now(UTC) - timedelta(hours=1)
    task_runs = [
        {
            "id": str(uuid.uuid4()),
            "flow_run_id": big["id"],
            "name": f"step-{n}",
            "task_key": "step",
            "start_time": (start + timedelta(seconds=n)).isoformat(),
            "end_time": (start + timedelta(seconds=n + 1)).isoformat(),
            "states": [{"type": "COMPLETED", "name": "Completed", "timestamp": start.isoformat()}],
        }
        for n in range(1200)
    ]
    logs = [
        {
            "flow_run_id": big["id"],
            "name": "etl",
            "level": 20,
            "message": f"line {n}",
            "timestamp": (start + timedelta(seconds=n)).isoformat(),
        }
        for n in range(600)
    ]
    ok(await client.post("/api/batch", json={"task_runs": task_runs, "logs": logs}))
    url = f"/runs/{big['id']}"

    with counted_statements(app) as statements:
        first = ok(await client.get(url, headers=HTML))
    # Header and Overview: the other four panels are placeholders the script fills.
    assert 'class="gantt-row"' not in first and 'class="log-line' not in first
    assert sorted(re.findall(r'data-lazy="(\w+)"', first)) == [
        "artifacts",
        "logs",
        "subflows",
        "tasks",
    ]
    assert 'data-fragment="overview"' in first and 'data-fragment="header"' in first
    assert 'id="tab-overview" aria-controls="panel-overview" aria-selected="true"' in first
    assert re.search(r'id="panel-overview"[^>]*tabindex="0">', first)
    assert re.search(r'id="panel-tasks"[^>]*tabindex="0" hidden>', first)
    assert len(first.encode()) < 20_000
    read = " ".join(statements).lower()
    assert "task_runs" not in read and "artifacts" not in read
    # The live stream starts after the newest log line, which the Logs tab then has too.
    cursor = re.search(r'id="live-topic" data-topic="run:[^"]+" data-cursor="(\d+)"', first)
    assert cursor is not None and int(cursor.group(1)) > 0
    logs_tab = ok(await client.get(f"{url}?fragment=logs", headers=HTML))
    assert "<html" not in logs_tab and logs_tab.count('class="log-line') == 500
    assert f'data-cursor="{cursor.group(1)}"' in logs_tab
    assert "line 599<" in logs_tab and "line 99<" not in logs_tab
    assert "Showing the newest 500 lines" in logs_tab

    # A link opens a tab: that panel is in the page, selected, and Overview waits.
    opened = ok(await client.get(f"{url}?tab=logs", headers=HTML))
    assert opened.count('class="log-line') == 500
    assert 'id="tab-logs" aria-controls="panel-logs" aria-selected="true"' in opened
    assert re.search(r'id="panel-logs"[^>]*tabindex="0">', opened)
    assert 'data-lazy="overview"' in opened and 'data-lazy="logs"' not in opened
    tasks = ok(await client.get(f"{url}?tab=Tasks", headers=HTML))
    assert tasks.count('class="gantt-row"') == 1000 and 'data-fragment="tasks"' in tasks
    # A timeline page's link (the pager's) opens on Task runs.
    later = ok(await client.get(f"{url}?task_offset=1000", headers=HTML))
    assert later.count('class="gantt-row"') == 200
    assert 'id="tab-tasks" aria-controls="panel-tasks" aria-selected="true"' in later
    # An unknown tab is ignored; an unknown fragment is empty and reads nothing but the run.
    for tab in ("bogus", "%00", "x" * 500):
        odd = ok(await client.get(f"{url}?tab={tab}", headers=HTML))
        assert 'id="tab-overview" aria-controls="panel-overview" aria-selected="true"' in odd
    with counted_statements(app) as statements:
        assert ok(await client.get(f"{url}?fragment=nonsense", headers=HTML)) == ""
    assert len(statements) <= 2
    for name in runs_page.SECTIONS:
        part = ok(await client.get(f"{url}?fragment={name}", headers=HTML))
        assert "<html" not in part and "data-lazy" not in part, name


def _last_log_id(html: str) -> str:
    ids = re.findall(r'data-cursor="(\d+)"', html)
    return ids[-1]


async def test_names_parameters_logs_markdown_cells_and_messages_are_inert(
    client: httpx.AsyncClient,
) -> None:
    flow_id = await flow(client, f"flow{SCRIPT}")
    payload = await run(
        client,
        flow_id,
        name=f"run{IMG}",
        tags=[SCRIPT],
        parameters={"p": SCRIPT, IMG: 1},
    )
    await set_state(client, payload["id"], "FAILED", state={"message": f"boom {IMG}"})
    now = datetime.now(UTC).isoformat()
    ok(
        await client.post(
            "/api/logs",
            json=[
                {
                    "flow_run_id": payload["id"],
                    "name": "x",
                    "level": 40,
                    "message": SCRIPT,
                    "timestamp": now,
                }
            ],
        ),
        201,
    )
    for artifact in (
        {"type": "markdown", "data": f"# t\n\n{SCRIPT}\n\n[x](javascript:window.__xss=1) {IMG}"},
        {"type": "table", "data": [{IMG: SCRIPT}], "description": SCRIPT},
        {"type": "link", "data": {"link": "javascript:window.__xss=1", "link_text": IMG}},
    ):
        ok(
            await client.post("/api/artifacts", json={**artifact, "flow_run_id": payload["id"]}),
            201,
        )

    tabs = [f"/runs/{payload['id']}?tab={name}" for name in runs_page.TABS]
    for url in (*tabs, "/runs", "/"):
        html = ok(await client.get(url, headers=HTML))
        assert "<script>window" not in html, url
        assert "<img src=x" not in html, url
        assert "javascript:" not in html.replace("javascript:window.__xss=1)", ""), url
        assert 'href="javascript' not in html, url
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html or "&lt;img" in html, url
        assert html.count("<script") == html.count('<script src="/ui/static/'), url
    detail = ok(await client.get(f"/runs/{payload['id']}", headers=HTML))
    assert "boom &lt;img src=x onerror=&#34;window.__xss=1&#34;&gt;" in detail
    # The markdown's script and html are text; its javascript: link is no link.
    artifacts = ok(await client.get(f"/runs/{payload['id']}?fragment=artifacts", headers=HTML))
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;</p>" in artifacts
    assert artifacts.count("<script") == 0
    logs = ok(await client.get(f"/runs/{payload['id']}?fragment=logs", headers=HTML))
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in logs and "<script" not in logs


# -- live ---------------------------------------------------------------------------


async def test_the_probes_move_when_a_run_changes_and_the_feed_sends_new_lines(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    etl = await flow(client, "etl")
    first = await run(client, etl, name="one")
    database = app.state.database

    async def probes() -> tuple[Any, Any]:
        async with database.session() as session, session.begin():
            return await runs_page.runs_probe(session, ""), await runs_page.run_probe(
                session, first["id"]
            )

    before_list, before_run = await probes()
    await set_state(client, first["id"], "RUNNING")
    after_list, after_run = await probes()
    assert after_list != before_list and after_run != before_run
    now = datetime.now(UTC).isoformat()
    ok(
        await client.post(
            "/api/batch",
            json={
                "task_runs": [
                    {
                        "id": str(uuid.uuid4()),
                        "flow_run_id": first["id"],
                        "name": "t",
                        "task_key": "t",
                        "states": [{"type": "RUNNING", "name": "Running", "timestamp": now}],
                    }
                ],
                "logs": [
                    {
                        "flow_run_id": first["id"],
                        "name": "n",
                        "level": 20,
                        "message": f"m{n}",
                        "timestamp": now,
                    }
                    for n in range(3)
                ],
            },
        )
    )
    assert (await probes())[1] != after_run

    async with database.session() as session, session.begin():
        events, cursor = await runs_page.logs_feed(session, first["id"], "0")
        assert [e for e, _ in events] == ["lines"]
        assert [line["message"] for line in events[0][1]] == ["m0", "m1", "m2"]
        assert events[0][1][0]["level_name"] == "INFO"
        again, same = await runs_page.logs_feed(session, first["id"], str(cursor))
        assert again == [] and same == cursor
        # Nonsense from a client (an id, a cursor too big) sends nothing.
        assert (await runs_page.logs_feed(session, "nope", "0"))[0] == []
        assert (await runs_page.logs_feed(session, first["id"], str(2**70)))[0] == []
        # A cursor that is not a number resumes after the newest line, so later lines
        # still arrive (before, the stream kept the bad cursor and never sent one).
        nothing, resumed = await runs_page.logs_feed(session, first["id"], "x")
        assert nothing == [] and resumed == cursor
        assert await runs_page.run_probe(session, "nope") is None


async def test_a_failed_deployment_run_retried_from_the_page_is_claimed_again(
    client: httpx.AsyncClient,
) -> None:
    deployment = await deployment_on_pool(client)
    created = ok(await client.post(f"/api/deployments/{deployment['id']}/runs", json={}), 201)
    claim = {"worker_name": "w", "limit": 5}
    claimed = ok(await client.post("/api/work_pools/pool/claim", json=claim))["runs"]
    assert [c["flow_run"]["id"] for c in claimed] == [created["id"]]
    await set_state(client, created["id"], "RUNNING")
    await set_state(client, created["id"], "FAILED", state={"message": "bad"})
    html = ok(await client.get(f"/runs/{created['id']}", headers=HTML))
    assert f'data-retry="{created["id"]}"' in html
    assert 'id="cancel-run"' not in html
    # What the Retry button sends (runs.js): SCHEDULED now, forced past the finished state.
    answer = await set_state(
        client,
        created["id"],
        "SCHEDULED",
        state={"message": "Retried from the UI", "scheduled_time": datetime.now(UTC).isoformat()},
        force=True,
    )
    assert answer["decision"] == "ACCEPT"
    again = ok(await client.post("/api/work_pools/pool/claim", json=claim))["runs"]
    assert [c["flow_run"]["id"] for c in again] == [created["id"]]
    await set_state(client, created["id"], "RUNNING")
    run_now = ok(await client.get(f"/api/flow_runs/{created['id']}"))
    assert run_now["run_count"] == 2 and run_now["end_time"] is None


def test_log_rows_print_what_the_timestamp_filter_prints() -> None:
    from skyrun.server.ui.render import timestamp

    moments = [
        datetime(2026, 12, 2, 9, 30, 5, tzinfo=UTC),
        datetime(2026, 12, 2, 9, 30, 5, 123456, tzinfo=UTC),
        datetime(2026, 12, 2, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ]
    lines = [runs_page.ui_runs.LogLine(n, 25, "etl", "m", when) for n, when in enumerate(moments)]
    rows = runs_page.log_rows(lines)
    assert [row.shown for row in rows] == [timestamp(when) for when in moments]
    assert [row.iso for row in rows] == [when.astimezone(UTC).isoformat() for when in moments]
    # A level between the named ones keeps logging's name, and a class as runs.js makes it.
    assert rows[0].level_name == "Level 25" and rows[0].css == "level25"


def test_cursors_round_trip() -> None:
    cursor = runs_page.ui_runs.Cursor(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), uuid.uuid4())
    assert runs_page.parse_cursor(unquote(runs_page.format_cursor(cursor))) == cursor


@pytest.mark.parametrize(
    "query",
    [
        "flow=%00",
        "tag=%00",
        "tag=%F0%9F%90%8D",
        "deployment=%ED%A0%80",
        "start_after=0001-01-01T00:00%2B14:00",
        "start_before=9999-12-31T23:59:59-12:00",
        f"before=0001-01-01T00:00:00%2B14:00,{uuid.UUID(int=0)}",
        "state=" + "RUNNING," * 500,
        "fragment=nonsense",
    ],
)
async def test_odd_list_queries_never_500(client: httpx.AsyncClient, query: str) -> None:
    etl = await flow(client, "etl")
    await run(client, etl, name="r", tags=["t"])
    response = await client.get(f"/runs?{query}", headers=HTML)
    assert response.status_code in (200, 400), response.text[:1000]


async def test_with_auth_the_pages_need_a_session_and_cancel_needs_its_csrf_token(
    client: httpx.AsyncClient, api_settings: Settings, api_for: Any
) -> None:
    etl = await flow(client, "etl")
    target = await run(client, etl, name="guarded")
    await set_state(client, target["id"], "RUNNING")
    key = ok(await client.post("/api/api_keys", json={"name": "operator"}), 201)["key"]
    # Sessions are encrypted; on PostgreSQL the key must be given (as for block secrets).
    auth_settings = api_settings.model_copy(
        update={"server_auth_enabled": True, "encryption_key": TEST_ENCRYPTION_KEY}
    )
    async with api_for(auth_settings) as authed:
        for url in ("/", "/runs", f"/runs/{target['id']}", f"/runs/{target['id']}/logs.txt"):
            refused = await authed.get(url, headers=HTML)
            assert refused.status_code == 303, url
            assert refused.headers["location"].startswith("/login?next=")
        login = await authed.post("/login", data={"api_key": key, "next": "/runs"})
        assert login.status_code == 303, login.text
        assert login.headers["location"] == "/runs"
        page_html = ok(await authed.get(f"/runs/{target['id']}", headers=HTML))
        match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page_html)
        assert match is not None
        assert (await authed.get(f"/runs/{target['id']}/logs.txt")).status_code == 200
        body = {"state": {"type": "CANCELLING"}}
        url = f"/api/flow_runs/{target['id']}/set_state"
        assert (await authed.post(url, json=body)).status_code == 403
        answer = ok(await authed.post(url, json=body, headers={"X-CSRF-Token": match.group(1)}))
        assert answer["decision"] == "ACCEPT" and answer["state"]["type"] == "CANCELLING"
