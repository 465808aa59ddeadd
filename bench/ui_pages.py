"""M6: how long each UI page takes on the server with 10,000 flow runs and 100,000 task runs.

Usage (from the repository root, with the project venv)::

    .venv/bin/python bench/ui_pages.py [--flow-runs 10000] [--task-runs 100000] [--repeats 20]

Seeds a fresh SQLite home: through the API, 20 flows, a `process` and a `cloud-run`
pool, 10 deployments, blocks, variables; then, straight into the database (the
API would take minutes for 100,000 rows), the flow runs (states spread over the
last 24 hours, every fifth one from a deployment), their state histories, the task
runs (one run holds 2,000 of them, for the timeline), 20,000 log lines and 1,000
artifacts. Then it starts `skyrun server start` on that home and requests every
page `--repeats` times over loopback, one at a time, and reports the median and
the slowest answer per page (the time to the last byte, as a browser gets it).
The flow-run page's tabs count twice: as the first response of a link that opens
on them (`?tab=NAME`) and as the fragment the page fetches when the tab opens.
The target is under 100 ms per page (issue #11). Figures go to stdout and to
`bench/results/ui-pages.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
SKYRUN = Path(sys.executable).parent / "skyrun"
STATES = [
    ("COMPLETED", "Completed", 60),
    ("FAILED", "Failed", 10),
    ("CRASHED", "Crashed", 3),
    ("RUNNING", "Running", 5),
    ("SCHEDULED", "Scheduled", 12),
    ("SCHEDULED", "Late", 3),
    ("CANCELLED", "Cancelled", 4),
    ("PENDING", "Pending", 3),
]
BIG_RUN_TASKS = 2_000


async def _seed_through_api(home: Path) -> dict[str, Any]:
    from skyrun.server.app import create_app
    from skyrun.settings import Settings

    settings = Settings(home=home)
    app = create_app(settings, run_services=False)
    made: dict[str, Any] = {"flows": [], "deployments": [], "queues": []}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as api:

            async def call(method: str, path: str, **kwargs: Any) -> Any:
                response = await api.request(method, f"/api{path}", **kwargs)
                response.raise_for_status()
                return response.json() if response.content else None

            await call("POST", "/work_pools", json={"name": "bench-process", "type": "process"})
            await call("POST", "/work_pools", json={"name": "bench-cloud-run", "type": "cloud-run"})
            for pool in ("bench-process", "bench-cloud-run"):
                made["queues"] += [q["id"] for q in await call("GET", f"/work_pools/{pool}/queues")]
            for i in range(20):
                flow = await call("POST", "/flows", json={"name": f"bench-flow-{i}"})
                made["flows"].append(flow["id"])
            for i in range(10):
                deployment = await call(
                    "POST",
                    "/deployments",
                    json={
                        "name": f"bench-deployment-{i}",
                        "flow_name": f"bench-flow-{i}",
                        "entrypoint": "flows.py:bench",
                        "work_pool_name": "bench-process" if i % 2 else "bench-cloud-run",
                        "parameters": {"city": "Lisbon", "n": i},
                        "parameter_openapi_schema": {
                            "type": "object",
                            "properties": {
                                "city": {"type": "string", "title": "City"},
                                "n": {"type": "integer", "title": "N"},
                            },
                            "required": ["city"],
                        },
                    },
                )
                made["deployments"].append((deployment["id"], deployment["work_queue_id"]))
            for i in range(20):
                await call("PUT", f"/variables/bench-variable-{i}", json={"value": {"i": i}})
            await call(
                "POST",
                "/blocks",
                json={"block_type": "secret", "name": "bench-secret", "data": {"value": "s3cret"}},
            )
    return made


def _rows(made: dict[str, Any], n_runs: int, n_tasks: int) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(11)
    now = datetime.now(UTC)
    weights = [weight for *_, weight in STATES]
    runs: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for i in range(n_runs):
        run_id = uuid.uuid4()
        state_type, state_name, _ = rng.choices(STATES, weights)[0]
        created = now - timedelta(seconds=rng.uniform(0, 86_400))
        deployment_id, queue_id = (None, None)
        if i % 5 == 0:
            deployment_id, queue_id = made["deployments"][i % len(made["deployments"])]
        start = created + timedelta(seconds=rng.uniform(0.1, 5))
        finished = state_type in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
        end = start + timedelta(seconds=rng.uniform(1, 300)) if finished else None
        state_time = end or start
        state_id = uuid.uuid4()
        runs.append(
            {
                "id": run_id,
                "flow_id": uuid.UUID(made["flows"][i % len(made["flows"])]),
                "name": f"bench-run-{i}",
                "parameters": {"n": i},
                "tags": ["bench", f"shard-{i % 7}"],
                "expected_start_time": created,
                "deployment_id": uuid.UUID(deployment_id) if deployment_id else None,
                "work_queue_id": uuid.UUID(queue_id) if queue_id else None,
                "job_variables": {},
                "state_id": state_id,
                "state_type": state_type,
                "state_name": state_name,
                "state_timestamp": state_time,
                "state_message": "boom: a bench failure" if state_type == "FAILED" else None,
                "start_time": start if state_type not in ("SCHEDULED", "PENDING") else None,
                "end_time": end,
                "run_count": 1,
                "total_run_time": (end - start).total_seconds() if end else 0.0,
                "created": created,
                "updated": state_time,
            }
        )
        for number, (kind, name, when) in enumerate(
            [("SCHEDULED", "Scheduled", created), ("RUNNING", "Running", start)]
        ):
            history.append(
                {
                    "id": uuid.uuid4() if number < 1 or state_type != kind else state_id,
                    "flow_run_id": run_id,
                    "type": kind,
                    "name": name,
                    "timestamp": when,
                }
            )
        if finished:
            history.append(
                {
                    "id": state_id,
                    "flow_run_id": run_id,
                    "type": state_type,
                    "name": state_name,
                    "timestamp": state_time,
                }
            )
    # Distinct ids: a RUNNING run's current state is its RUNNING row above.
    seen: set[uuid.UUID] = set()
    history = [h for h in history if not (h["id"] in seen or seen.add(h["id"]))]

    big = runs[0]
    big.update(state_type="COMPLETED", state_name="Completed")
    tasks: list[dict[str, Any]] = []
    for i in range(n_tasks):
        owner = big if i < BIG_RUN_TASKS else runs[rng.randrange(1, n_runs)]
        begin = owner["created"] + timedelta(seconds=rng.uniform(0, 60))
        finish = begin + timedelta(seconds=rng.uniform(0.01, 20))
        kind = "COMPLETED" if rng.random() > 0.05 else "FAILED"
        tasks.append(
            {
                "id": uuid.uuid4(),
                "flow_run_id": owner["id"],
                "name": f"step-{i % 50}",
                "task_key": f"flows.step-{i % 50}",
                "tags": [],
                "state_history": [],
                "state_id": uuid.uuid4(),
                "state_type": kind,
                "state_name": kind.title(),
                "state_timestamp": finish,
                "start_time": begin,
                "end_time": finish,
                "run_count": 1,
                "total_run_time": (finish - begin).total_seconds(),
                "created": begin,
            }
        )
    logs = [
        {
            "flow_run_id": (big if i < 5_000 else runs[rng.randrange(n_runs)])["id"],
            "name": "skyrun.flow_runs",
            "level": rng.choice((10, 20, 20, 20, 30, 40)),
            "message": f"bench log line {i}",
            "timestamp": now - timedelta(seconds=20_000 - i),
        }
        for i in range(20_000)
    ]
    artifacts = [
        {
            "id": uuid.uuid4(),
            "key": f"bench-report-{i % 100}",
            "type": "markdown" if i % 2 else "table",
            "description": f"bench artifact {i}",
            "data": f"# Report {i}\n\n| a | b |\n|---|---|\n| {i} | x |"
            if i % 2
            else [{"city": "Lisbon", "temp": i}],
            "flow_run_id": runs[i % n_runs]["id"],
            "created": now - timedelta(seconds=1_000 - i),
        }
        for i in range(1_000)
    ]
    return {"runs": runs, "history": history, "tasks": tasks, "logs": logs, "artifacts": artifacts}


async def _seed_rows(home: Path, rows: dict[str, list[dict[str, Any]]]) -> None:
    from skyrun.server.db.engine import Database
    from skyrun.server.db.models import Artifact, FlowRun, FlowRunState, Log, TaskRun
    from skyrun.settings import Settings

    database = Database.from_settings(Settings(home=home))
    tables = [
        (FlowRun, rows["runs"]),
        (FlowRunState, rows["history"]),
        (TaskRun, rows["tasks"]),
        (Log, rows["logs"]),
        (Artifact, rows["artifacts"]),
    ]
    async with database.session() as session, session.begin():
        for model, values in tables:
            for start in range(0, len(values), 5_000):
                await session.execute(sa.insert(model), values[start : start + 5_000])
    await database.dispose()


def pages(made: dict[str, Any], rows: dict[str, list[dict[str, Any]]]) -> dict[str, str | None]:
    big = rows["runs"][0]["id"]
    deployment = made["deployments"][0][0]
    return {
        "dashboard": "/",
        "flow runs": "/runs",
        "flow runs, FAILED": "/runs?state=FAILED",
        "flow runs, page 2": None,  # filled from the first page's next link
        "flow run (2,000 task runs)": f"/runs/{big}",
        "flow run, task timeline": f"/runs/{big}?tab=tasks",
        "flow run, logs": f"/runs/{big}?tab=logs",
        # What the page fetches when a tab opens (and, for the live ones, on each change).
        "flow run, tasks fragment": f"/runs/{big}?fragment=tasks",
        "flow run, tasks page 2": f"/runs/{big}?fragment=tasks&task_offset=1000",
        "flow run, logs fragment": f"/runs/{big}?fragment=logs",
        "flow run, artifacts fragment": f"/runs/{big}?fragment=artifacts",
        "flow run, overview fragment": f"/runs/{big}?fragment=overview",
        "flow run, header fragment": f"/runs/{big}?fragment=header",
        "deployments": "/deployments",
        "deployment": f"/deployments/{deployment}",
        "work pools": "/work-pools",
        "work pool (cloud-run)": "/work-pools/bench-cloud-run",
        "blocks": "/blocks",
        "variables": "/variables",
        "artifacts": "/artifacts",
        "artifact (history)": "/artifacts/bench-report-1",
    }


def _next_link(html: str) -> str | None:
    marker = 'rel="next"'
    at = html.find(marker)
    if at < 0:
        return None
    start = html.rfind('href="', 0, at)
    if start < 0:
        return None
    return html[start + 6 : html.index('"', start + 6)].replace("&amp;", "&")


def measure(base: str, urls: dict[str, str | None], repeats: int) -> list[dict[str, Any]]:
    results = []
    with httpx.Client(base_url=base, timeout=30, headers={"Accept": "text/html"}) as client:
        first = client.get("/runs")
        urls["flow runs, page 2"] = _next_link(first.text)
        for label, url in urls.items():
            if url is None:
                results.append({"page": label, "url": None, "status": "no such link"})
                continue
            client.get(url)  # warm: templates compiled, caches filled
            times, status, size = [], 0, 0
            for _ in range(repeats):
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
                status, size = response.status_code, len(response.content)
            results.append(
                {
                    "page": label,
                    "url": url,
                    "status": status,
                    "bytes": size,
                    "median_ms": round(statistics.median(times), 1),
                    "max_ms": round(max(times), 1),
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flow-runs", type=int, default=10_000)
    parser.add_argument("--task-runs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="skyrun-ui-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYRUN_")}
    env["SKYRUN_HOME"] = str(home)
    os.environ.update({"SKYRUN_HOME": str(home)})
    started = time.perf_counter()
    made = asyncio.run(_seed_through_api(home))
    rows = _rows(made, args.flow_runs, args.task_runs)
    asyncio.run(_seed_rows(home, rows))
    print(f"[bench] seeded {home} in {time.perf_counter() - started:.1f}s", file=sys.stderr)

    port = free_port()
    log = (home / "server.log").open("wb")
    server = subprocess.Popen(
        [str(SKYRUN), "server", "start", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the server did not start; see {home / 'server.log'}")
            time.sleep(0.1)
        results = measure(base, pages(made, rows), args.repeats)
    finally:
        server.terminate()
        server.wait(30)
    print(f"{'page':32} {'status':>6} {'KiB':>7} {'median ms':>10} {'max ms':>8}")
    for r in results:
        if r.get("median_ms") is None:
            print(f"{r['page']:32} {r['status']}")
            continue
        print(
            f"{r['page']:32} {r['status']:>6} {r['bytes'] / 1024:>7.1f} "
            f"{r['median_ms']:>10.1f} {r['max_ms']:>8.1f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "flow_runs": args.flow_runs,
        "task_runs": args.task_runs,
        "repeats": args.repeats,
        "load_1m": os.getloadavg()[0],
        "pages": results,
    }
    (RESULTS / "ui-pages.json").write_text(json.dumps(out, indent=2))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
