"""Acceptance: two API servers on one PostgreSQL database, a worker on each.

Both servers run the scheduler and housekeeping at once. Every run still
executes exactly once; the schedulers create no run twice; housekeeping marks
each overdue run Late once, not once per replica.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from worker_support import (
    LEDGER_FLOWS,
    ServerProcess,
    WorkerProcess,
    deploy,
    run_deployment,
    wait_for,
    write_flows,
)

from skyrun.client.client import SkyrunClient
from skyrun.schemas.core import FlowRun, FlowRunFilter
from skyrun.schemas.deployments import DeploymentCreate, DeploymentScheduleCreate
from skyrun.schemas.states import LATE, TERMINAL_TYPES, StateCreate, StateType, utcnow
from skyrun.schemas.work_pools import WorkPoolCreate, WorkQueueCreate

RUNS = 200
OVERDUE = 300

# Both replicas schedule and keep house often, so their passes overlap.
REPLICA_ENV = {"SKYRUN_SCHEDULER_INTERVAL": "0.3", "SKYRUN_LATE_AFTER_SECONDS": "1"}


@pytest.fixture
def replicas(tmp_path: Path, database_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL database")
    first = ServerProcess(tmp_path / "a", database_url, **REPLICA_ENV)
    try:
        second = ServerProcess(tmp_path / "b", database_url, **REPLICA_ENV)
    except BaseException:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


def _all(client: SkyrunClient, deployment_id: object) -> list[FlowRun]:
    runs: list[FlowRun] = []
    while True:
        page = client.filter_flow_runs(
            FlowRunFilter(deployment_id=deployment_id, limit=1000, offset=len(runs))
        )
        runs += page.items
        if len(runs) >= page.count or not page.items:
            return runs


@pytest.mark.slow
def test_two_replicas_run_once_schedule_once_and_mark_late_once(
    replicas: tuple[ServerProcess, ServerProcess], tmp_path: Path
) -> None:
    first, second = replicas
    client_a, client_b = first.client(), second.client()
    project = tmp_path / "project"
    write_flows(project, LEDGER_FLOWS)
    ledger = tmp_path / "ledger.txt"
    client_a.create_work_pool(WorkPoolCreate(name="shared", type="process"))
    client_a.create_work_queue("shared", WorkQueueCreate(name="held", is_paused=True))
    light = {"command": f"{sys.executable} -m skyrun.sdk.execute", "stream_output": False}
    deployment = deploy(
        client_a, project, "shared", entrypoint="flows.py:record_run", job_variables=light
    )
    # A held deployment on the paused queue: scheduled every second by both replicas,
    # never run.
    held = client_b.upsert_deployment(
        DeploymentCreate(
            flow_name="record-run",
            name="held",
            entrypoint="flows.py:record_run",
            path=str(project),
            work_pool_name="shared",
            work_queue_name="held",
            parameters={"path": str(ledger)},
            schedules=[DeploymentScheduleCreate(schedule={"interval": 1})],
        )
    )
    # Overdue runs on the paused queue: both replicas' housekeeping sees them late.
    past = utcnow() - timedelta(minutes=5)
    overdue = [
        run_deployment(
            client_b if i % 2 else client_a,
            held,
            work_queue_name="held",
            parameters={"path": str(ledger)},
            state=StateCreate(type=StateType.SCHEDULED, scheduled_time=past),
        )
        for i in range(OVERDUE)
    ]
    run_ids = {
        run_deployment(
            client_a if i % 2 else client_b, deployment, parameters={"path": str(ledger)}
        ).id
        for i in range(RUNS)
    }
    workers = [
        WorkerProcess(first, "shared", "--limit", "4", "--work-queue", "default"),
        WorkerProcess(second, "shared", "--limit", "4", "--work-queue", "default"),
    ]
    try:

        def all_final() -> list[FlowRun] | None:
            runs = _all(client_a, deployment.id)
            done = [r for r in runs if r.state and r.state.type in TERMINAL_TYPES]
            return runs if len(done) == RUNS else None

        runs = wait_for(all_final, 240, f"{RUNS} runs to end", interval=1.0)
    finally:
        outputs = [worker.output() for worker in workers]
        for worker in workers:
            worker.stop()

    states = collections.Counter(r.state.type for r in runs if r.state)
    assert states == {StateType.COMPLETED: RUNS}, states
    counts = collections.Counter(ledger.read_text().split())
    assert counts == {str(run_id): 1 for run_id in run_ids}
    assert all("started pid:" in output for output in outputs), outputs

    scheduled = [r for r in _all(client_b, held.id) if r.auto_scheduled]
    times = collections.Counter(r.expected_start_time for r in scheduled)
    assert scheduled and max(times.values()) == 1, times
    for run in overdue:
        names = [s.name for s in client_a.read_flow_run_states(run.id)]
        assert names.count(LATE) == 1, names
    for server in replicas:
        assert "failed" not in server.log_path.read_text(), server.log_path.read_text()[-3000:]
