"""Acceptance: two workers racing on one pool run every flow run exactly once.

Two `skyrun worker start` processes poll the same pool; each flow run appends
its own run id to one file (O_APPEND, so concurrent writes do not interleave).
Every id must appear exactly once and every run must end COMPLETED, on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_support import (
    ServerProcess,
    WorkerProcess,
    deploy,
    run_deployment,
    wait_for,
    write_flows,
)

from skyrun.schemas.core import FlowRunFilter
from skyrun.schemas.states import TERMINAL_TYPES, StateType
from skyrun.schemas.work_pools import WorkPoolCreate

RUNS = 200
WORKERS = 2
LIMIT_PER_WORKER = 4

FLOWS = """
import os

from skyrun import flow
from skyrun.sdk.context import current_flow_run


@flow
def record_run(path: str):
    line = f"{current_flow_run().flow_run_id}\\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
"""


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "home", database_url)
    yield server
    server.stop()


@pytest.mark.slow
def test_two_workers_run_every_run_exactly_once(server: ServerProcess, tmp_path: Path) -> None:
    client = server.client()
    project = tmp_path / "project"
    write_flows(project, FLOWS)
    ledger = tmp_path / "ledger.txt"
    client.create_work_pool(WorkPoolCreate(name="race", type="process"))
    # The lightest launch: the execute module without the CLI around it, no output streaming.
    light = {"command": f"{sys.executable} -m skyrun.sdk.execute", "stream_output": False}
    deployment = deploy(
        client, project, "race", entrypoint="flows.py:record_run", job_variables=light
    )
    run_ids = {
        run_deployment(client, deployment, parameters={"path": str(ledger)}).id for _ in range(RUNS)
    }
    assert len(run_ids) == RUNS

    workers = [
        WorkerProcess(server, "race", "--limit", str(LIMIT_PER_WORKER)) for _ in range(WORKERS)
    ]
    try:

        def all_final() -> list | None:
            page = client.filter_flow_runs(FlowRunFilter(deployment_id=deployment.id, limit=1000))
            done = [r for r in page.items if r.state and r.state.type in TERMINAL_TYPES]
            return page.items if len(done) == RUNS else None

        runs = wait_for(all_final, 240, f"{RUNS} runs to end", interval=1.0)
    finally:
        outputs = [worker.output() for worker in workers]
        for worker in workers:
            worker.stop()

    states = collections.Counter(r.state.type for r in runs if r.state)
    assert states == {StateType.COMPLETED: RUNS}, states
    counts = collections.Counter(ledger.read_text().split())
    assert set(counts) == {str(run_id) for run_id in run_ids}
    duplicates = {run_id: n for run_id, n in counts.items() if n != 1}
    assert not duplicates, f"runs executed more than once: {duplicates}"
    # Both workers took part (otherwise the race was not tested).
    assert all("started pid:" in output for output in outputs), outputs
