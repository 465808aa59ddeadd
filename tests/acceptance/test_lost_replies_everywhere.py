"""Acceptance: replies lost all along a run's way, and every run still runs once, whole.

A real server, a real worker and its flow processes, all talking to the server
through `faults.FaultProxy`, which loses the server's answer (after the server
acted) to chosen requests: the runs' creation, the worker's claim, the flows'
RUNNING proposals, their heartbeats, their batches of task runs and logs, and
their final states. Every run must execute exactly once and end COMPLETED with
all of its task runs and log lines, each recorded once.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Iterator
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

from faults import FaultProxy, Rule
from skyrun.client.client import SkyrunClient
from skyrun.schemas.core import FlowRun, FlowRunFilter
from skyrun.schemas.states import TERMINAL_TYPES, StateType
from skyrun.schemas.work_pools import WorkPoolCreate
from skyrun.settings import Settings

RUNS = 6
STEPS = 3


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "home", database_url)
    yield server
    server.stop()


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[FaultProxy]:
    proxy = FaultProxy(server.port)
    yield proxy
    proxy.close()


@pytest.mark.slow
def test_every_run_runs_once_and_whole_when_replies_are_lost(
    server: ServerProcess, proxy: FaultProxy, tmp_path: Path
) -> None:
    direct = server.client()
    settings = Settings(home=server.home).model_copy(update={"api_url": proxy.api_url})
    client = SkyrunClient(settings)
    project = tmp_path / "project"
    write_flows(project, LEDGER_FLOWS)
    ledger = tmp_path / "ledger.txt"
    direct.create_work_pool(WorkPoolCreate(name="lossy", type="process"))
    light = {"command": f"{sys.executable} -m skyrun.sdk.execute", "stream_output": False}
    deployment = deploy(
        direct, project, "lossy", entrypoint="flows.py:steps_run", job_variables=light
    )

    run_path = r"/api/flow_runs/[^/]+/set_state"
    rules: dict[str, Rule] = {
        "run creation": proxy.drop_reply("POST", r"/api/deployments/[^/]+/runs", times=2),
        "claim": proxy.drop_reply("POST", r"/api/work_pools/lossy/claim", times=1),
        "RUNNING": proxy.drop_reply("POST", run_path, body_contains='"RUNNING"', times=2),
        "heartbeat": proxy.drop_reply("POST", r"/api/flow_runs/[^/]+/heartbeat", times=2),
        "batch": proxy.drop_reply("POST", r"/api/batch", times=2),
        "COMPLETED": proxy.drop_reply("POST", run_path, body_contains='"COMPLETED"', times=2),
    }
    parameters = {"path": str(ledger), "steps": STEPS}
    created = {run_deployment(client, deployment, parameters=parameters).id for _ in range(RUNS)}
    assert len(created) == RUNS
    worker = WorkerProcess(
        server,
        "lossy",
        "--limit",
        "2",
        SKYRUN_API_URL=proxy.api_url,
        # A beat soon enough that the running flows' heartbeats meet the proxy too.
        SKYRUN_FLOW_RUN_HEARTBEAT_INTERVAL="0.5",
    )
    try:

        def all_final() -> list[FlowRun] | None:
            page = direct.filter_flow_runs(FlowRunFilter(deployment_id=deployment.id))
            done = [r for r in page.items if r.state and r.state.type in TERMINAL_TYPES]
            return page.items if len(done) >= RUNS else None

        runs = wait_for(all_final, 180, f"{RUNS} runs to end", interval=0.5)
    finally:
        output = worker.output()
        worker.stop()
        client.close()

    not_lost = {name: rule.hits for name, rule in rules.items() if rule.remaining}
    assert not not_lost, f"these faults never happened: {not_lost}\n{output[-3000:]}"
    assert len(runs) == RUNS  # a lost creation reply made no second run
    states = collections.Counter(r.state.type for r in runs if r.state)
    assert states == {StateType.COMPLETED: RUNS}, (states, output[-3000:])
    assert collections.Counter(ledger.read_text().split()) == {str(i): 1 for i in created}
    for run in runs:
        assert_steps_recorded_once(direct, run.id, STEPS)
        history = [s.type for s in direct.read_flow_run_states(run.id)]
        assert history.count(StateType.RUNNING) == 1, history
        assert history.count(StateType.COMPLETED) == 1, history
    direct.close()
