"""A worker whose claim reply is lost gets the same runs when it polls again.

The worker loop runs against the embedded API through a transport that lets
the first claim that took a run reach the server and then loses its reply, as
a dropped connection would. The worker's infrastructure is a stand-in that
records what it launched; the API, the claim and the loop's threads are real.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

from skyrun.client.client import SkyrunClient
from skyrun.client.embedded import EmbeddedTransport
from skyrun.client.transport import ApiRequest, Response, TransportError
from skyrun.schemas.core import FlowRun
from skyrun.schemas.deployments import DeploymentCreate, DeploymentRunCreate
from skyrun.schemas.states import TERMINAL_TYPES, StateType
from skyrun.schemas.work_pools import WorkPoolCreate
from skyrun.settings import Settings
from skyrun.workers.base import BaseWorker, InfrastructureResult
from skyrun.workers.loop import WorkerLoop, WorkerOptions

FINISH_TIMEOUT = 60  # a guard against runs that never end, not a timing target


class LosesFirstClaimReply:
    """Forwards requests to the embedded app; loses the reply of the first claim that took runs."""

    def __init__(self, inner: EmbeddedTransport) -> None:
        self.inner = inner
        self.lost: list[bytes] = []

    def send(self, request: ApiRequest) -> Response:
        response = self.inner.send(request)
        if request.path.endswith("/claim") and b'"flow_run"' in response.content and not self.lost:
            self.lost.append(response.content)
            raise TransportError("connection reset by peer (the reply was lost)", maybe_sent=True)
        return response

    def close(self) -> None:
        self.inner.close()


class RecordingWorker(BaseWorker):
    """Infrastructure that "runs" instantly and remembers which runs it launched."""

    type = "recording"

    def __init__(self, client: SkyrunClient) -> None:
        super().__init__(client)
        self.launched: list[uuid.UUID] = []

    def submit(
        self, flow_run: FlowRun, job_configuration: dict[str, Any], env: dict[str, str]
    ) -> str:
        self.launched.append(flow_run.id)
        return f"recording:{flow_run.id}"

    def watch(self, infrastructure_id: str) -> InfrastructureResult:
        return InfrastructureResult(exit_code=0)

    def kill(self, infrastructure_id: str, grace_seconds: float) -> None:
        return None


def test_a_poll_retried_after_a_lost_reply_gets_the_same_run(sdk_home: Path) -> None:
    # No retries inside the client: the loop's own retry of the poll is under test.
    settings = Settings(home=sdk_home, client_retries=0)
    transport = LosesFirstClaimReply(EmbeddedTransport(settings))
    client = SkyrunClient(settings, transport=transport)
    template = {"job_configuration": {}, "variables": {"type": "object", "properties": {}}}
    client.create_work_pool(
        WorkPoolCreate(name="pool", type="recording", base_job_template=template)
    )
    deployment = client.upsert_deployment(
        DeploymentCreate(flow_name="f", name="d", entrypoint="f.py:f", work_pool_name="pool")
    )
    runs = [client.create_deployment_run(deployment.id, DeploymentRunCreate()) for _ in range(2)]
    worker = RecordingWorker(client)
    options = WorkerOptions(pool_name="pool", worker_name="w", limit=1, poll_seconds=0.2)
    loop = WorkerLoop(worker, client, settings, options)
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        deadline = time.monotonic() + FINISH_TIMEOUT
        while not all(_finished(client, run.id) for run in runs):
            # A run claimed by the lost reply, and not claimed again by the retry,
            # would stay PENDING until its lease ran out (no housekeeping runs here).
            assert time.monotonic() < deadline, [client.read_flow_run(r.id).state for r in runs]
            time.sleep(0.05)
        assert len(transport.lost) == 1
        assert sorted(worker.launched) == sorted(run.id for run in runs)
        for run in runs:
            history = [state.type for state in client.read_flow_run_states(run.id)]
            assert history.count(StateType.PENDING) == 1, history
    finally:
        loop.stop()
        thread.join(10)
        client.close()


def _finished(client: SkyrunClient, run_id: uuid.UUID) -> bool:
    state = client.read_flow_run(run_id).state
    return state is not None and state.type in TERMINAL_TYPES
