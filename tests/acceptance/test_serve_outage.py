"""flow.serve() keeps what it must report when the server does not answer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from worker_support import ServerProcess

from skyrun.client.client import SkyrunClient
from skyrun.client.errors import ServerUnreachable
from skyrun.schemas.core import FlowRunCreate
from skyrun.schemas.deployments import DeploymentCreate
from skyrun.schemas.states import StateCreate, StateType
from skyrun.sdk.serve import DeploymentServer, _Child
from skyrun.settings import Settings


def test_a_child_that_ends_during_an_outage_is_reported_once_the_server_is_back(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    server = ServerProcess(home)
    settings = Settings(home=home).model_copy(
        update={"api_url": server.api_url, "client_retries": 0, "client_retry_seconds": 0.0}
    )
    client = SkyrunClient(settings)
    restarted = None
    try:
        flow = client.create_flow("served")
        deployment = client.upsert_deployment(
            DeploymentCreate(flow_name="served", name="d", entrypoint="f.py:served")
        )
        run = client.create_flow_run(
            FlowRunCreate(flow_id=flow.id, state=StateCreate(type=StateType.RUNNING))
        )
        serving = DeploymentServer(client, deployment, limit=None, poll_seconds=1.0)
        child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
        child.wait()
        serving.children.append(_Child(run, child))

        server.stop()
        try:
            serving.poll_once()
        except ServerUnreachable:
            pass  # run_forever logs this and polls again
        assert [c.run.id for c in serving.children] == [run.id]  # kept, to report later

        restarted = ServerProcess(home, port=server.port)
        serving.poll_once()
        assert serving.children == []
        state = client.read_flow_run(run.id).state
        assert state is not None and state.type == StateType.CRASHED
        assert "exited with code 3" in (state.message or "")
    finally:
        client.close()
        if restarted is not None:
            restarted.stop()
        server.stop()
