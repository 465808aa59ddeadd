"""Acceptance: a running flow run is never orphaned, whatever dies under it.

The worker is SIGKILLed while two flows run, and a new worker starts. One
flow goes on and reports its own end; the other's process is SIGKILLed too, so
nobody is left to report it: its heartbeats stop and the server makes it
CRASHED after SKYRUN_FLOW_RUN_HEARTBEAT_TIMEOUT, while the heartbeating one,
silent to no worker, stays RUNNING until it completes. Nothing runs twice.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_support import (
    ServerProcess,
    WorkerProcess,
    deploy,
    pid_alive,
    run_deployment,
    state_of,
    wait_final,
    wait_for,
    wait_state,
    write_flows,
)

from skyrun.schemas.states import StateType
from skyrun.schemas.work_pools import WorkPoolCreate

HEARTBEAT_TIMEOUT = "6"
HEARTBEAT_INTERVAL = "0.5"

FLOWS = """
import os
import time

from skyrun import flow
from skyrun.sdk.context import current_flow_run


@flow
def wait_then_record(go: str, ledger: str) -> None:
    while not os.path.exists(go):
        time.sleep(0.05)
    line = f"{current_flow_run().flow_run_id}\\n".encode()
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
"""


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path / "home", database_url, SKYRUN_FLOW_RUN_HEARTBEAT_TIMEOUT=HEARTBEAT_TIMEOUT
    )
    yield server
    server.stop()


def test_a_killed_worker_orphans_no_run(server: ServerProcess, tmp_path: Path) -> None:
    client = server.client()
    project = tmp_path / "project"
    write_flows(project, FLOWS)
    go, ledger = tmp_path / "go", tmp_path / "ledger.txt"
    client.create_work_pool(WorkPoolCreate(name="pool", type="process"))
    # The flow processes write nothing to the worker: they outlive it, and a pipe would break.
    light = {"command": f"{sys.executable} -m skyrun.sdk.execute", "stream_output": False}
    deployment = deploy(
        client, project, "pool", entrypoint="flows.py:wait_then_record", job_variables=light
    )
    parameters = {"go": str(go), "ledger": str(ledger)}
    keeper = run_deployment(client, deployment, parameters=parameters).id
    victim = run_deployment(client, deployment, parameters=parameters).id
    heartbeats = {"SKYRUN_FLOW_RUN_HEARTBEAT_INTERVAL": HEARTBEAT_INTERVAL}
    first = WorkerProcess(server, "pool", **heartbeats)
    second = None
    try:
        for run_id in (keeper, victim):
            wait_state(client, run_id, StateType.RUNNING)
        pids = {
            run_id: int(
                wait_for(
                    lambda r=run_id: client.read_flow_run(r).infrastructure_id, 30, "a pid"
                ).removeprefix("pid:")
            )
            for run_id in (keeper, victim)
        }
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        second = WorkerProcess(server, "pool", **heartbeats)
        os.kill(pids[victim], signal.SIGKILL)

        crashed = wait_final(client, victim, timeout=60)
        assert crashed.state is not None and crashed.state.type == StateType.CRASHED
        assert (crashed.state.message or "").startswith(
            f"no heartbeat from the process running it for {HEARTBEAT_TIMEOUT}s"
        )
        # Longer than the timeout without its worker, yet alive: its own heartbeats count.
        assert pid_alive(pids[keeper])
        assert state_of(client, keeper) == StateType.RUNNING
        go.touch()
        completed = wait_final(client, keeper, timeout=60)
        assert completed.state is not None and completed.state.type == StateType.COMPLETED
    finally:
        go.touch()
        first.stop()
        second_output = second.output() if second else ""
        if second is not None:
            second.stop()
    assert ledger.read_text().split() == [str(keeper)]  # once, and the victim never
    assert "started pid:" not in second_output  # the new worker relaunched nothing
