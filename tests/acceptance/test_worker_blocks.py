"""A worker renders a job template that names a block: with a key of scope `secrets` the
flow gets the secret; with a `write` key the run FAILS saying which scope is missing."""

from __future__ import annotations

import copy
from pathlib import Path

from worker_support import (
    ServerProcess,
    WorkerProcess,
    deploy,
    run_deployment,
    wait_final,
    write_flows,
)

from skyrun.client.client import SkyrunClient
from skyrun.jobs.process_template import PROCESS_JOB_TEMPLATE
from skyrun.schemas.api_keys import ApiKeyScope
from skyrun.schemas.states import StateType
from skyrun.schemas.work_pools import WorkPoolCreate
from skyrun.settings import Settings

FLOWS = """
import os
from pathlib import Path
from skyrun import flow

@flow
def myflow():
    Path("token.txt").write_text(os.environ["TOKEN"])
"""


def test_a_job_template_block_needs_a_worker_key_with_scope_secrets(tmp_path: Path) -> None:
    home, project = tmp_path / "server", tmp_path / "project"
    write_flows(project, FLOWS)
    # Keys and the block made as an admin would, against the server's database.
    local = SkyrunClient(Settings(home=home))
    try:
        admin = local.create_api_key("admin", ApiKeyScope.ADMIN).key
        keys = {
            scope: local.create_api_key(f"worker-{scope.value}", scope).key
            for scope in (ApiKeyScope.WRITE, ApiKeyScope.SECRETS)
        }
        local.create_block("secret", "token", {"value": "s3cr3t"})
    finally:
        local.close()
    template = copy.deepcopy(PROCESS_JOB_TEMPLATE)
    template["job_configuration"]["env"] = {"TOKEN": "{{ skyrun.blocks.secret.token.value }}"}
    del template["variables"]["properties"]["env"]

    server = ServerProcess(home, SKYRUN_SERVER_AUTH_ENABLED="true")
    api = SkyrunClient(Settings(home=tmp_path, api_url=server.api_url, api_key=admin))
    workers: list[WorkerProcess] = []
    try:
        for scope in keys:
            pool = f"pool-{scope.value}"
            api.create_work_pool(
                WorkPoolCreate(name=pool, type="process", base_job_template=template)
            )
            workers.append(WorkerProcess(server, pool, SKYRUN_API_KEY=keys[scope]))

        refused = run_deployment(api, deploy(api, project, "pool-write"))
        state = wait_final(api, refused.id).state
        assert state is not None and state.type is StateType.FAILED
        assert state.message is not None
        assert state.message.startswith("cannot render the job: API key 'worker-write' has scope")
        assert "needs 'secrets'" in state.message
        assert not (project / "token.txt").exists()

        allowed = run_deployment(api, deploy(api, project, "pool-secrets"))
        state = wait_final(api, allowed.id).state
        assert state is not None and state.type is StateType.COMPLETED, workers[1].output()
        assert (project / "token.txt").read_text() == "s3cr3t"
    finally:
        for worker in workers:
            worker.stop()
        api.close()
        server.stop()
