"""`{{ skyrun.blocks.TYPE.NAME[.FIELD] }}` and `TYPE/NAME` block references, resolved from real
blocks (embedded mode): in a job template's render, in a project file's deploy, and in pull
steps when the run executes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from processes import ServerProcess
from skyrun.client.client import SkyrunClient
from skyrun.deploy.project import parse_project
from skyrun.deploy.runner import DeployError, Overrides, deploy_project
from skyrun.jobs.templates import JobTemplateError, prepare_job
from skyrun.schemas.api_keys import ApiKeyScope
from skyrun.schemas.deployments import DeploymentCreate
from skyrun.schemas.states import StateType
from skyrun.sdk.execute import execute_flow_run
from skyrun.settings import Settings

KEY = {
    "type": "service_account",
    "private_key": "-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n",
    "client_email": "runner@proj.iam.gserviceaccount.com",
    "token_uri": "https://oauth2.googleapis.com/token",
}
TEMPLATE: dict[str, Any] = {
    "job_configuration": {
        "credentials": "{{ credentials }}",
        "env": {"TOKEN": "{{ skyrun.blocks.secret.token.value }}"},
        "project": "project={{ skyrun.blocks.gcp-credentials.creds.project }}",
    },
    "variables": {
        "type": "object",
        "properties": {
            "credentials": {
                "title": "GCP credentials",
                "type": ["string", "object", "null"],
                "block_type": "gcp-credentials",
            }
        },
    },
}


@pytest.fixture
def client(sdk_home: Path) -> Iterator[SkyrunClient]:
    client = SkyrunClient(Settings())
    client.create_block("secret", "token", {"value": "s3cr3t"})
    client.create_block(
        "gcp-credentials", "creds", {"project": "proj", "service_account_info": KEY}
    )
    try:
        yield client
    finally:
        client.close()


def render(client: SkyrunClient, job_variables: dict[str, Any]) -> dict[str, Any]:
    return prepare_job(
        TEMPLATE,
        {},
        job_variables,
        env={},
        skyrun_variables=client.variable_value,
        blocks=client.block_value,
    )


def test_a_job_template_renders_blocks_and_block_references(client: SkyrunClient) -> None:
    rendered = render(client, {"credentials": "gcp-credentials/creds"})
    assert rendered == {
        "credentials": {"project": "proj", "service_account_info": KEY},
        "env": {"TOKEN": "s3cr3t"},
        "project": "project=proj",
    }
    with pytest.raises(JobTemplateError) as caught:
        render(client, {"credentials": "gcp-credentials/missing"})
    assert "job variable 'credentials': block gcp-credentials/missing does not exist" in str(
        caught.value
    )
    client.delete_block("secret", "token")
    with pytest.raises(JobTemplateError) as caught:
        render(client, {})
    assert "job_configuration.env.TOKEN: block secret/token does not exist" in str(caught.value)


FLOW = """
import os
from pathlib import Path
from skyrun import flow

@flow
def show(token: str) -> str:
    Path("seen.txt").write_text(token + " " + Path("pulled.txt").read_text())
    return token
"""

PROJECT = """
name: blocks-demo
build:
  - run_shell_script:
      id: build
      script: echo built-with-{{{{ skyrun.blocks.secret.token.value }}}}
      stream_output: false
pull:
  - set_working_directory:
      directory: {directory}
  - run_shell_script:
      script: sh -c 'printf %s "{{{{ skyrun.blocks.secret.token.value }}}}" > pulled.txt'
      stream_output: false
deployments:
  - name: show
    entrypoint: flows.py:show
    parameters:
      token: "{{{{ skyrun.blocks.secret.token.value }}}}-{{{{ build.stdout }}}}"
"""


def test_a_project_file_deploys_with_blocks_and_pull_steps_read_them_at_run_time(
    client: SkyrunClient, tmp_path: Path
) -> None:
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "flows.py").write_text(FLOW)
    project = parse_project(PROJECT.format(directory=project_dir))
    cwd = os.getcwd()
    try:
        [deployment] = deploy_project(
            project_dir, project, list(project.deployments), Overrides(), client, say=lambda _: None
        )
        # Deploy time: parameters and build steps resolved; pull steps keep theirs for the run.
        assert deployment.parameters == {"token": "s3cr3t-built-with-s3cr3t"}
        assert "{{ skyrun.blocks.secret.token.value }}" in str(deployment.pull_steps)

        # Run time: the pull step reads the block as it is then.
        client.update_block("secret", "token", {"value": "rotated"})
        run = client.create_deployment_run(deployment.id)
        assert execute_flow_run(run.id, client) == 0
        state = client.read_flow_run(run.id).state
        assert state is not None and state.type is StateType.COMPLETED
        assert (project_dir / "seen.txt").read_text() == "s3cr3t-built-with-s3cr3t rotated"

        broken = parse_project(PROJECT.format(directory=project_dir).replace("token.value", "nope"))
        with pytest.raises(DeployError, match="block secret/nope does not exist"):
            deploy_project(
                project_dir, broken, list(broken.deployments), Overrides(), client, say=print
            )
    finally:
        os.chdir(cwd)


def test_a_pull_step_whose_key_cannot_read_secrets_fails_the_run_saying_why(
    tmp_path: Path,
) -> None:
    home = tmp_path / "server"
    local = SkyrunClient(Settings(home=home))
    try:
        writer = local.create_api_key("flow", ApiKeyScope.WRITE).key
        local.create_block("secret", "token", {"value": "s3cr3t"})
    finally:
        local.close()
    server = ServerProcess(home, SKYRUN_SERVER_AUTH_ENABLED="true")
    remote = SkyrunClient(Settings(home=tmp_path, api_url=server.api_url, api_key=writer))
    cwd = os.getcwd()
    try:
        step = {"run_shell_script": {"script": "echo {{ skyrun.blocks.secret.token.value }}"}}
        deployment = remote.upsert_deployment(
            DeploymentCreate(
                flow_name="show", name="d", entrypoint="flows.py:show", pull_steps=[step]
            )
        )
        run = remote.create_deployment_run(deployment.id)
        assert execute_flow_run(run.id, remote) == 1
        state = remote.read_flow_run(run.id).state
        assert state is not None and state.type is StateType.FAILED
        assert state.message is not None
        assert state.message.startswith("pull step failed: cannot read what it names: API key")
        assert "needs 'secrets'" in state.message
    finally:
        os.chdir(cwd)
        remote.close()
        server.stop()
