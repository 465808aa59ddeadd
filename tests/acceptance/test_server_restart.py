"""Acceptance: runs that end while the server is down still end in their true state.

A worker runs three flows; the server is stopped; the flows end while it is
away (one completes, one fails, one's process is killed); the server restarts
on the same port. The flows' final states and the worker's CRASHED report wait
for it (SKYRUN_FINAL_STATE_TIMEOUT) instead of giving up, and the worker polls
again within seconds: a run created after the restart runs too.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_support import (
    ServerProcess,
    WorkerProcess,
    deploy,
    run_deployment,
    wait_final,
    wait_for,
    wait_state,
    write_flows,
)

from skyrun.schemas.states import StateType
from skyrun.schemas.work_pools import WorkPoolCreate

FLOWS = """
import os
import signal
import time

from skyrun import flow


@flow
def finish(mode: str, go: str) -> str:
    while not os.path.exists(go):
        time.sleep(0.05)
    if mode == "fail":
        raise RuntimeError("failed on purpose")
    if mode == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    return "done"
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def server(home: Path, database_url: str) -> Iterator[ServerProcess]:
    server = ServerProcess(home, database_url)
    yield server
    server.stop()


def test_runs_that_end_while_the_server_is_down_end_in_their_true_state(
    server: ServerProcess, home: Path, database_url: str, tmp_path: Path
) -> None:
    client = server.client()
    project = tmp_path / "project"
    write_flows(project, FLOWS)
    go = tmp_path / "go"
    client.create_work_pool(WorkPoolCreate(name="pool", type="process"))
    light = {"command": f"{sys.executable} -m skyrun.sdk.execute"}
    deployment = deploy(client, project, "pool", entrypoint="flows.py:finish", job_variables=light)
    runs = {
        mode: run_deployment(client, deployment, parameters={"mode": mode, "go": str(go)}).id
        for mode in ("complete", "fail", "die")
    }
    worker = WorkerProcess(server, "pool")
    restarted = None
    try:
        for run_id in runs.values():
            wait_state(client, run_id, StateType.RUNNING)
        server.stop()
        go.touch()
        # Each one waits for the server, and says so once: the two flows' own final
        # states, and the worker's report on the process that was killed.
        waiting = [
            f"flow run {runs['complete']}: proposing COMPLETED: no answer from the skyrun API",
            f"flow run {runs['fail']}: proposing FAILED: no answer from the skyrun API",
            f"reading flow run {runs['die']}: no answer from the skyrun API",
        ]
        wait_for(
            lambda: all(line in worker.output() for line in waiting),
            60,
            f"the runs to wait for the server (worker log: {worker.log_path})",
        )
        restarted = ServerProcess(home, database_url, port=server.port)

        finals = {mode: wait_final(client, run_id) for mode, run_id in runs.items()}
        states = {mode: run.state.type for mode, run in finals.items() if run.state}
        assert states == {
            "complete": StateType.COMPLETED,
            "fail": StateType.FAILED,
            "die": StateType.CRASHED,
        }
        died = finals["die"].state
        assert died is not None and "killed by signal SIGKILL" in (died.message or "")
        # The worker is polling again: a run created now is run.
        after = run_deployment(client, deployment, parameters={"mode": "complete", "go": str(go)})
        finished = wait_final(client, after.id)
        assert finished.state is not None and finished.state.type == StateType.COMPLETED
    finally:
        output = worker.output()
        worker.stop()
        if restarted is not None:
            restarted.stop()
    for line in waiting:
        assert output.count(line) == 1, output  # logged once, not at every try
