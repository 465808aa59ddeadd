"""Acceptance: a reply lost on the way back never makes a run twice or stops one running.

Each test puts `faults.FaultProxy` between the client and a real server (SQLite
and PostgreSQL): the server gets the request and answers it, and the proxy
loses the answer (or holds it until the client times out). The client's retry
must then get the first answer, never a second effect, and the CLI must say
what happened in one line.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_support import (
    LEDGER_FLOWS,
    ServerProcess,
    clean_env,
    deploy,
    run_deployment,
    write_flows,
)

from faults import FaultProxy
from skyrun.client.client import SkyrunClient
from skyrun.schemas.artifacts import ArtifactCreate
from skyrun.schemas.core import FlowRunFilter
from skyrun.schemas.states import StateType
from skyrun.schemas.work_pools import WorkPoolCreate
from skyrun.settings import Settings

SKYRUN = Path(sys.executable).parent / "skyrun"
SUBPROCESS_TIMEOUT = 120  # a guard against hangs, not a timing assertion


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


def through(proxy: FaultProxy, server: ServerProcess, **env: str) -> dict[str, str]:
    """The environment of a skyrun process that reaches the server through the proxy."""
    return clean_env(server.home, SKYRUN_API_URL=proxy.api_url, **env)


def run(
    command: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
    )


def test_a_lost_reply_to_the_running_proposal_still_runs_the_flow_once(
    server: ServerProcess, proxy: FaultProxy, tmp_path: Path
) -> None:
    """The retried RUNNING proposal gets its first answer (ACCEPT), not ABORT (RUNNING->RUNNING)."""
    client = server.client()
    project = tmp_path / "project"
    write_flows(project, LEDGER_FLOWS)
    ledger = tmp_path / "ledger.txt"
    client.create_work_pool(WorkPoolCreate(name="pool", type="process"))
    deployment = deploy(client, project, "pool", entrypoint="flows.py:record_run")
    flow_run = run_deployment(client, deployment, parameters={"path": str(ledger)})
    lost = proxy.drop_reply(
        "POST", f"/api/flow_runs/{flow_run.id}/set_state", body_contains='"type":"RUNNING"'
    )

    result = run(
        [sys.executable, "-m", "skyrun.sdk.execute", str(flow_run.id)], through(proxy, server)
    )

    assert lost.hits == 1, proxy.requests
    assert result.returncode == 0, result.stderr
    assert ledger.read_text().split() == [str(flow_run.id)]
    states = [s.type for s in client.read_flow_run_states(flow_run.id)]
    assert states == [StateType.SCHEDULED, StateType.RUNNING, StateType.COMPLETED]


def test_a_lost_reply_to_create_flow_run_makes_one_run(
    server: ServerProcess, proxy: FaultProxy, tmp_path: Path
) -> None:
    """A flow called in a script: the retried creation returns the run the first one made."""
    script = write_flows(tmp_path / "script", LEDGER_FLOWS)
    ledger = tmp_path / "ledger.txt"
    lost = proxy.drop_reply("POST", "/api/flow_runs")

    result = run([sys.executable, str(script), str(ledger)], through(proxy, server))

    assert lost.hits == 1, proxy.requests
    assert result.returncode == 0, result.stderr
    client = server.client()
    runs = client.filter_flow_runs(FlowRunFilter(flow_name="record-run")).items
    assert [(r.state.type if r.state else None) for r in runs] == [StateType.COMPLETED]
    assert ledger.read_text().split() == [str(runs[0].id)]


def test_a_lost_reply_to_a_deployment_run_makes_one_run(
    server: ServerProcess, proxy: FaultProxy, tmp_path: Path
) -> None:
    """`skyrun deployment run` sends an idempotency key: its retry returns the first run."""
    client = server.client()
    client.create_work_pool(WorkPoolCreate(name="pool", type="process"))
    deployment = deploy(client, tmp_path, "pool", name="nightly", entrypoint="flows.py:etl")
    lost = proxy.drop_reply("POST", f"/api/deployments/{deployment.id}/runs")

    result = run(
        [str(SKYRUN), "deployment", "run", "etl/nightly", "-o", "json"], through(proxy, server)
    )

    assert lost.hits == 1, proxy.requests
    assert result.returncode == 0, result.stderr
    runs = client.filter_flow_runs(FlowRunFilter(deployment_id=deployment.id)).items
    assert len(runs) == 1
    assert str(runs[0].id) in result.stdout


def test_a_lost_reply_to_an_artifact_stores_it_once(
    server: ServerProcess, proxy: FaultProxy, tmp_path: Path
) -> None:
    settings = Settings(home=server.home).model_copy(
        update={"api_url": proxy.api_url, "api_key": None, "database_url": None}
    )
    client = SkyrunClient(settings)
    try:
        lost = proxy.drop_reply("POST", "/api/artifacts")
        artifact = client.create_artifact(
            ArtifactCreate(key="report", type="markdown", data="# Weather")
        )
        assert lost.hits == 1, proxy.requests
        page = server.client().list_artifacts(key="report")
        assert [a.id for a in page.items] == [artifact.id]
    finally:
        client.close()


def test_a_lost_reply_to_a_request_that_is_not_safe_to_repeat_is_not_repeated(
    server: ServerProcess, proxy: FaultProxy, tmp_path: Path
) -> None:
    """Creating a work pool carries no key: the CLI says it may have happened, in one line."""
    lost = proxy.drop_reply("POST", "/api/work_pools")

    result = run(
        [str(SKYRUN), "work-pool", "create", "--type", "process", "once"], through(proxy, server)
    )

    assert lost.hits == 1
    assert proxy.requests.count("POST /api/work_pools") == 1  # not sent again
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: the skyrun API at ") and "did not answer" in line
    assert "it may have taken effect" in line
    assert [p.name for p in server.client().list_work_pools()] == ["once"]


def test_a_read_timeout_is_one_line_from_the_cli(
    server: ServerProcess, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.hold_reply("POST", "/api/flow_runs/filter")

    result = run(
        [str(SKYRUN), "flow-run", "ls"],
        through(proxy, server, SKYRUN_CLIENT_TIMEOUT="1", SKYRUN_CLIENT_RETRIES="1"),
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == textwrap.shorten(line, width=len(line))  # one line, no control characters
    assert line.startswith(f"Error: the skyrun API at {proxy.api_url} did not answer ")
    assert "timed out after 1s waiting for the answer (2 tries)" in line
    assert "raise SKYRUN_CLIENT_TIMEOUT (now 1s)" in line
    assert "is the server running" not in line
    # A read: safe to repeat, so it was tried twice (SKYRUN_CLIENT_RETRIES=1).
    assert proxy.requests.count("POST /api/flow_runs/filter") == 2
