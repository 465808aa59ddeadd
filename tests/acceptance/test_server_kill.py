"""Acceptance: the server is SIGKILLed and restarted while flows run through two workers.

Nothing is lost: every run executes exactly once and ends COMPLETED, with all of
its task runs and log lines, although some of them began, ran or ended while
no server answered (their states, batches and final states wait and retry).
"""

from __future__ import annotations

import collections
import signal
import sys
import time
from pathlib import Path

import pytest
from worker_support import (
    LEDGER_FLOWS,
    ServerProcess,
    WorkerProcess,
    assert_steps_recorded_once,
    deploy,
    run_deployment,
    wait_for,
    write_flows,
)

from skyrun.client.client import SkyrunClient
from skyrun.schemas.core import FlowRun, FlowRunFilter
from skyrun.schemas.states import TERMINAL_TYPES, StateType
from skyrun.schemas.work_pools import WorkPoolCreate

RUNS = 20
STEPS = 4
DOWNTIME_SECONDS = 4.0


def _runs(client: SkyrunClient, deployment_id: object) -> list[FlowRun]:
    return client.filter_flow_runs(FlowRunFilter(deployment_id=deployment_id, limit=1000)).items


@pytest.mark.slow
def test_a_server_killed_and_restarted_loses_no_run_and_no_record(
    tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    server = ServerProcess(home, database_url)
    client = server.client()
    project = tmp_path / "project"
    write_flows(project, LEDGER_FLOWS)
    ledger = tmp_path / "ledger.txt"
    client.create_work_pool(WorkPoolCreate(name="durable", type="process"))
    light = {"command": f"{sys.executable} -m skyrun.sdk.execute", "stream_output": False}
    deployment = deploy(
        client, project, "durable", entrypoint="flows.py:steps_run", job_variables=light
    )
    parameters = {"path": str(ledger), "steps": STEPS, "seconds": 3.0}
    run_ids = {run_deployment(client, deployment, parameters=parameters).id for _ in range(RUNS)}
    workers = [WorkerProcess(server, "durable", "--limit", "4") for _ in range(2)]
    restarted = None
    try:
        try:

            def some_running() -> bool:
                states = collections.Counter(r.state.type for r in _runs(client, deployment.id))
                return states[StateType.RUNNING] >= 4

            wait_for(some_running, 120, "runs to be in flight")
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            server.stop()
            time.sleep(DOWNTIME_SECONDS)
            restarted = ServerProcess(home, database_url, port=server.port)

            def all_final() -> list[FlowRun] | None:
                runs = _runs(client, deployment.id)
                done = [r for r in runs if r.state and r.state.type in TERMINAL_TYPES]
                return runs if len(done) == RUNS else None

            runs = wait_for(all_final, 240, f"{RUNS} runs to end", interval=1.0)
        finally:
            outputs = "\n".join(worker.output() for worker in workers)
            for worker in workers:
                worker.stop()

        states = collections.Counter(r.state.type for r in runs if r.state)
        crashed = {
            str(r.id): [(s.type.value, s.message) for s in client.read_flow_run_states(r.id)]
            for r in runs
            if r.state and r.state.type != StateType.COMPLETED
        }
        assert states == {StateType.COMPLETED: RUNS}, (states, crashed, outputs[-3000:])
        counts = collections.Counter(ledger.read_text().split())
        assert counts == {str(run_id): 1 for run_id in run_ids}
        for run in runs:
            assert_steps_recorded_once(client, run.id, STEPS)
    finally:
        client.close()
        if restarted is not None:
            restarted.stop()
