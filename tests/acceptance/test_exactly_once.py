"""Acceptance: two workers racing on one pool run every flow run exactly once.

Two `skyrun worker start` processes poll the same pool; each flow run appends
its own run id to one file (O_APPEND, so concurrent writes do not interleave).
Every id must appear exactly once and every run must end COMPLETED, on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import collections
import os
import shlex
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_support import (
    LEDGER_FLOWS,
    ServerProcess,
    WorkerProcess,
    deploy,
    run_deployment,
    wait_final,
    wait_for,
    wait_state,
    write_flows,
)

from skyrun.client.client import SkyrunClient
from skyrun.schemas.core import FlowRunFilter
from skyrun.schemas.states import TERMINAL_TYPES, StateType
from skyrun.schemas.work_pools import WorkPoolCreate

RUNS = 200
WORKERS = 2
LIMIT_PER_WORKER = 4


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "home", database_url)
    yield server
    server.stop()


@pytest.mark.slow
def test_two_workers_run_every_run_exactly_once(server: ServerProcess, tmp_path: Path) -> None:
    client = server.client()
    project = tmp_path / "project"
    write_flows(project, LEDGER_FLOWS)
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
    histories = {
        run_id: [(s.type.value, s.name, s.message) for s in client.read_flow_run_states(run_id)]
        for run_id in duplicates
    }
    assert not duplicates, f"runs executed more than once: {duplicates}; states: {histories}"
    # Both workers took part (otherwise the race was not tested).
    assert all("started pid:" in output for output in outputs), outputs


def owner(client: SkyrunClient, run_id: uuid.UUID) -> str | None:
    """The name of the worker that claimed the run last."""
    run = client.read_flow_run(run_id)
    assert run.work_pool_name is not None
    names = {w.id: w.name for w in client.list_workers(run.work_pool_name)}
    return names.get(run.worker_id) if run.worker_id else None


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "home")
    yield server
    server.stop()


def test_a_run_whose_claim_was_lost_still_runs_once(
    sqlite_server: ServerProcess, tmp_path: Path
) -> None:
    """A worker freezes after launching a run; the server hands the run to another worker.

    The frozen worker's process then starts the flow first; the new owner's process is
    refused (another process is running it) and its worker leaves the run alone rather
    than reporting it crashed. The flow runs once and the run ends COMPLETED.
    """
    server = sqlite_server
    client = server.client()
    project = tmp_path / "project"
    write_flows(project, LEDGER_FLOWS)
    ledger = tmp_path / "ledger.txt"
    client.create_work_pool(WorkPoolCreate(name="lost", type="process"))
    # The first launch waits for the test's go-ahead; later launches start 5 s late.
    first, go = tmp_path / "first-launch", tmp_path / "go"
    launch = (
        f"if mkdir {first} 2>/dev/null; then while [ ! -e {go} ]; do sleep 0.1; done; "
        f"else sleep 5; fi; exec {sys.executable} -m skyrun.sdk.execute"
    )
    deployment = deploy(
        client,
        project,
        "lost",
        entrypoint="flows.py:record_run",
        job_variables={"command": f"sh -c {shlex.quote(launch)}", "stream_output": False},
    )
    run = run_deployment(client, deployment, parameters={"path": str(ledger), "seconds": 8})

    def history() -> list[StateType]:
        return [s.type for s in client.read_flow_run_states(run.id)]

    frozen = WorkerProcess(server, "lost")
    taker = None
    try:
        wait_for(lambda: client.read_flow_run(run.id).infrastructure_id, 30, "the first launch")
        os.kill(frozen.process.pid, signal.SIGSTOP)
        # No heartbeats: the server marks the worker OFFLINE and reschedules the run.
        wait_for(lambda: history()[2:3] == [StateType.SCHEDULED], 30, "the run to be rescheduled")
        taker = WorkerProcess(server, "lost")
        wait_for(
            lambda: history()[3:4] == [StateType.PENDING] and owner(client, run.id) == taker.name,
            30,
            "the second worker's claim",
        )
        go.touch()
        wait_state(client, run.id, StateType.RUNNING, timeout=30)
        finished = wait_final(client, run.id, timeout=60)
        os.kill(frozen.process.pid, signal.SIGCONT)
        wait_for(lambda: "exited with" in frozen.output(), 30, "the first worker to see its exit")
    finally:
        os.kill(frozen.process.pid, signal.SIGCONT)
        frozen.stop()
        taker_output = taker.output() if taker else ""
        if taker is not None:
            taker.stop()

    assert finished.state is not None and finished.state.type == StateType.COMPLETED
    assert ledger.read_text().split() == [str(run.id)]
    assert StateType.CRASHED not in history()
    assert "exited with code 75" in taker_output
    assert "claim was lost" in taker_output
