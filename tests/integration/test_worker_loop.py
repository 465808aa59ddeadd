"""The worker loop against the embedded API: every path of a run gives its slot back.

The worker type here is a stand-in defined by the test (its submit and watch
fail when a run's job variables ask them to); everything else is real: the
API, orchestration, job rendering and the loop's threads.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from processes import free_port
from skyrun.client.client import SkyrunClient, get_client
from skyrun.client.errors import SkyrunAPIError
from skyrun.schemas.core import FlowRun
from skyrun.schemas.deployments import DeploymentCreate, DeploymentRunCreate
from skyrun.schemas.states import TERMINAL_TYPES, StateType
from skyrun.schemas.work_pools import WorkPoolCreate, WorkPoolUpdate
from skyrun.settings import Settings, get_settings
from skyrun.workers.base import BaseWorker, InfrastructureError, InfrastructureResult
from skyrun.workers.loop import (
    RECONNECT_MAX_SECONDS,
    WorkerConfigError,
    WorkerLoop,
    WorkerOptions,
    ensure_work_pool,
)
from skyrun.workers.process import ProcessWorker


class FlakyWorker(BaseWorker):
    """Infrastructure that fails as each run's job variables ask: at submit, at watch, or not."""

    type = "flaky"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.results: dict[str, str] = {}

    def submit(
        self, flow_run: FlowRun, job_configuration: dict[str, Any], env: dict[str, str]
    ) -> str:
        behaviour = job_configuration.get("behaviour", "exit-0")
        if behaviour == "no-start":
            raise InfrastructureError("no capacity left")
        infrastructure_id = f"flaky:{flow_run.id}"
        self.results[infrastructure_id] = behaviour
        return infrastructure_id

    def watch(self, infrastructure_id: str) -> InfrastructureResult:
        if self.results[infrastructure_id] == "watch-raises":
            raise RuntimeError("lost track of the job")
        return InfrastructureResult(exit_code=0)

    def kill(self, infrastructure_id: str, grace_seconds: float) -> None:
        return None

    @classmethod
    def default_job_template(cls) -> dict[str, Any]:
        return {
            "job_configuration": {"behaviour": "{{ behaviour }}"},
            "variables": {
                "type": "object",
                "properties": {"behaviour": {"type": "string", "default": "exit-0"}},
            },
        }


def test_every_path_gives_its_slot_back(sdk_home: Path) -> None:
    client = get_client()
    pool = ensure_work_pool(client, "flaky-pool", "flaky", FlakyWorker.default_job_template())
    deployment = client.upsert_deployment(
        DeploymentCreate(
            flow_name="nothing", name="d", entrypoint="flows.py:nothing", work_pool_name=pool.name
        )
    )
    behaviours = ["no-start", "watch-raises", "exit-0", "bad-variables"]
    runs = [
        client.create_deployment_run(
            deployment.id, DeploymentRunCreate(job_variables={"behaviour": behaviour})
        )
        for behaviour in behaviours
    ]
    # The server refuses job variables the pool's template does not accept; a run
    # whose variables the template stopped accepting after it was created (the
    # pool changed) fails when the worker renders its job.
    with pytest.raises(SkyrunAPIError, match="job variable 'behaviour'"):
        client.create_deployment_run(
            deployment.id, DeploymentRunCreate(job_variables={"behaviour": 12})
        )
    template = FlakyWorker.default_job_template()
    template["variables"]["properties"]["behaviour"]["enum"] = behaviours[:3]
    client.update_work_pool(pool.name, WorkPoolUpdate(base_job_template=template))
    options = WorkerOptions(pool_name=pool.name, worker_name="flaky-1", limit=1, poll_seconds=0.2)
    loop = WorkerLoop(FlakyWorker(client), client, get_settings(), options)
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [client.read_flow_run(r.id).state for r in runs]
            if all(s is not None and s.type in TERMINAL_TYPES for s in states):
                break
            time.sleep(0.05)
    finally:
        loop.stop()
        thread.join(10)
    messages = {b: client.read_flow_run(r.id).state for b, r in zip(behaviours, runs, strict=True)}
    assert messages["no-start"].type == StateType.CRASHED
    assert "no capacity left" in messages["no-start"].message
    assert messages["watch-raises"].type == StateType.CRASHED
    assert "the worker failed" in messages["watch-raises"].message
    # exit code 0 but the (stand-in) job never reported: crashed, with the code.
    assert messages["exit-0"].type == StateType.CRASHED
    assert "exited with code 0" in messages["exit-0"].message
    assert messages["bad-variables"].type == StateType.FAILED
    assert "behaviour" in messages["bad-variables"].message
    assert loop.slots.in_use == 0


def test_a_pool_of_another_type_is_refused(sdk_home: Path) -> None:
    client = get_client()
    client.create_work_pool(WorkPoolCreate(name="processes", type="process"))
    with pytest.raises(WorkerConfigError, match=r"is of type 'process'.*-t process"):
        ensure_work_pool(client, "processes", "flaky", FlakyWorker.default_job_template())


class RecordingStop(threading.Event):
    """The loop's stop event, recording each wait instead of sleeping; set after `waits`."""

    def __init__(self, waits: int) -> None:
        super().__init__()
        self.limit = waits
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0.0))
        if len(self.waits) >= self.limit:
            self.set()
        return self.is_set()


def test_a_worker_whose_server_is_away_tries_again_within_seconds(settings: Settings) -> None:
    """After a server restart the worker polls within RECONNECT_MAX_SECONDS (it used to
    wait up to 30 s between polls, and its heartbeats a whole interval)."""
    nothing_listens = f"http://127.0.0.1:{free_port()}/api"
    settings = settings.model_copy(
        update={"api_url": nothing_listens, "client_retries": 0, "worker_heartbeat_interval": 30}
    )
    client = SkyrunClient(settings)
    try:
        loop = WorkerLoop(ProcessWorker(client), client, settings, WorkerOptions("pool", "worker"))
        loop.stopping = polls = RecordingStop(waits=12)
        loop._claim_loop()
        loop.stopping = beats = RecordingStop(waits=12)
        loop._heartbeat_loop()
    finally:
        client.close()
    for waits in (polls.waits, beats.waits):
        assert max(waits) == RECONNECT_MAX_SECONDS, waits
        assert waits[0] < waits[3], waits  # backing off, from well below the cap
