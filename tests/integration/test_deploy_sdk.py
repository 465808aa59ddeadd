"""Integration: `flow.deploy()` on the embedded API (entrypoint, parameter schema,
schedules, errors), the scheduler replacing future runs when a deployment changes, and
`flow.serve()` in a subprocess running deployment runs against a real server."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from processes import SKYRUN, ServerProcess, clean_env, stop, wait_for
from skyrun import flow
from skyrun.client.client import SkyrunClient, get_client
from skyrun.schemas.core import FlowRun, FlowRunFilter
from skyrun.schemas.deployments import (
    DeploymentRunCreate,
    DeploymentScheduleCreate,
    DeploymentUpdate,
)
from skyrun.schemas.states import StateType
from skyrun.schemas.work_pools import WorkPoolCreate
from skyrun.sdk.deploy import DeploymentError, deploy_flow
from skyrun.sdk.serve import DeploymentServer
from skyrun.server.db.engine import Database
from skyrun.server.services.scheduler import schedule_deployment_runs
from skyrun.settings import Settings

SUBPROCESS_TIMEOUT = 120  # a guard against hangs, not a timing assertion
FLOW_FILE = '''
import os
import time

from skyrun import flow


@flow(name="load-rows")
def load(n: int, label: str = "rows", ratio: float = 0.5) -> str:
    """Load rows into the warehouse.

    Args:
        n: how many rows to load
        label (str): what to call them
    """
    print(f"loaded {n} {label}")
    return f"{n} {label}"


@flow
def crash(code: int = 3, sleep: float = 0.0) -> None:
    time.sleep(sleep)
    os._exit(code)
'''


@pytest.fixture
def project(sdk_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """`flows/etl.py` in a project folder that is the working directory, imported."""
    root = tmp_path / "project"
    (root / "flows").mkdir(parents=True)
    path = root / "flows" / "etl.py"
    path.write_text(FLOW_FILE)
    monkeypatch.chdir(root)
    name = f"etl_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_deploy_registers_entrypoint_schema_and_schedule(
    project: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    client = get_client()
    client.create_work_pool(WorkPoolCreate(name="main", type="process"))
    deployment_id = project.load.deploy(
        "nightly",
        work_pool_name="main",
        parameters={"n": 3},
        cron="0 9 * * *",
        timezone="America/New_York",
        tags=["etl"],
        job_variables={"env": {"STAGE": "prod"}},
        version="1.2",
    )
    assert "skyrun deployment run load-rows/nightly" in capsys.readouterr().out

    deployment = client.read_deployment(deployment_id)
    root = Path.cwd()
    assert (deployment.flow_name, deployment.name) == ("load-rows", "nightly")
    assert deployment.entrypoint == "flows/etl.py:load"
    assert deployment.path == str(root)
    assert deployment.pull_steps == [{"set_working_directory": {"directory": str(root)}}]
    assert deployment.parameters == {"n": 3}
    assert deployment.work_pool_name == "main" and deployment.work_queue_name == "default"
    assert deployment.job_variables == {"env": {"STAGE": "prod"}}
    assert deployment.tags == ["etl"] and deployment.version == "1.2"
    assert deployment.description is not None
    assert deployment.description.startswith("Load rows into the warehouse.")
    [schedule] = deployment.schedules
    assert schedule.active
    assert schedule.schedule["cron"] == "0 9 * * *"
    assert schedule.schedule["timezone"] == "America/New_York"

    schema = deployment.parameter_openapi_schema
    properties = schema["properties"]
    assert list(properties) == ["n", "label", "ratio"]
    assert properties["n"]["type"] == "integer"
    assert properties["n"]["description"] == "how many rows to load"
    assert properties["label"] == {
        "default": "rows",
        "description": "what to call them",
        "title": "Label",
        "type": "string",
    }
    assert properties["ratio"]["default"] == 0.5 and "description" not in properties["ratio"]
    assert schema["required"] == ["n"]
    assert schema["additionalProperties"] is False

    # Deploying again under the same name replaces it in place.
    again = project.load.deploy("nightly", parameters={"n": 4, "label": "crates"})
    assert again == deployment_id
    replaced = client.read_deployment(deployment_id)
    assert replaced.parameters == {"n": 4, "label": "crates"}
    assert replaced.work_pool_name is None and replaced.schedules == []
    assert client.list_deployments().count == 1


def test_deploy_refuses_what_cannot_run(project: ModuleType) -> None:
    get_client().create_work_pool(WorkPoolCreate(name="main", type="process"))
    load = project.load
    cases: list[tuple[dict[str, Any], str]] = [
        ({"parameters": {"n": "many"}}, "parameter 'n': 'many' is not of type 'integer'"),
        ({"parameters": {"n": 1, "rows": 2}}, "'rows' was unexpected"),
        ({"parameters": {"n": 1, "when": object()}}, "parameters must be JSON values"),
        ({"cron": "0 9 * * *"}, "scheduled runs need a value for 'n'"),
        ({"parameters": {"n": 1}, "cron": "0 9 * *"}, "invalid cron expression"),
        ({"parameters": {"n": 1}, "interval": -5}, "interval must be"),
        ({"parameters": {"n": 1}, "cron": "0 9 * * *", "timezone": "Mars/Base"}, "Mars/Base"),
        ({"timezone": "UTC"}, "timezone= applies to a schedule"),
        ({"work_pool_name": "nowhere"}, "work pool 'nowhere' not found"),
        ({"work_pool_name": "main", "work_queue_name": "urgent"}, "'urgent' not found"),
        ({"work_pool_name": "main", "job_variables": {"region": "eu"}}, "'region'"),
        (
            {"work_pool_name": "main", "job_variables": {"stream_output": "yes"}},
            "job variable 'stream_output': 'yes' is not of type 'boolean'",
        ),
        ({"job_variables": {"env": {}}}, "job_variables need a work_pool_name"),
    ]
    for options, message in cases:
        with pytest.raises(DeploymentError) as caught:
            load.deploy("nightly", **options)
        assert message in str(caught.value), (options, str(caught.value))
        assert "\n" not in str(caught.value)
    assert get_client().list_deployments().count == 0


def test_deploy_sets_a_concurrency_limit_that_inspect_shows(
    project: ModuleType, sdk_home: Path
) -> None:
    client = get_client()
    client.create_work_pool(WorkPoolCreate(name="main", type="process"))
    deployment_id = project.load.deploy(
        "nightly", work_pool_name="main", parameters={"n": 1}, concurrency_limit=2
    )
    assert client.read_deployment(deployment_id).concurrency_limit == 2

    def inspect(*args: str) -> str:
        result = subprocess.run(
            [str(SKYRUN), "deployment", "inspect", "load-rows/nightly", *args],
            env=clean_env(sdk_home, NO_COLOR="1", COLUMNS="200"),
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert re.search(r"concurrency limit\W+2 active runs at once\W", inspect())
    assert json.loads(inspect("-o", "json"))["concurrency_limit"] == 2
    # Deploying again without one removes it; a served deployment cannot have one.
    project.load.deploy("nightly", work_pool_name="main", parameters={"n": 1})
    assert client.read_deployment(deployment_id).concurrency_limit is None
    assert re.search(r"concurrency limit\W+none\W", inspect())
    with pytest.raises(DeploymentError, match="concurrency_limit needs a work_pool_name"):
        project.load.deploy("served", concurrency_limit=1)
    with pytest.raises(
        DeploymentError, match="concurrency_limit: Input should be greater than or equal to 0"
    ):
        project.load.deploy("nightly", work_pool_name="main", concurrency_limit=-1)
    assert client.list_deployments().count == 1


def test_deploy_needs_a_flow_in_a_file(project: ModuleType) -> None:
    namespace: dict[str, Any] = {"flow": flow}
    exec(compile("@flow\ndef typed_in(x: int = 1) -> int:\n    return x\n", "<stdin>", "exec"),
         namespace)  # fmt: skip
    with pytest.raises(DeploymentError, match=r"defined in '<stdin>', not in a Python file"):
        namespace["typed_in"].deploy("adhoc")

    def factory() -> Any:
        @flow
        def nested() -> None:
            pass

        return nested

    with pytest.raises(DeploymentError, match="top level of its module"):
        factory().deploy("adhoc")
    assert get_client().list_deployments().count == 0


def _schedule_runs(settings: Settings, now: datetime) -> int:
    async def run() -> int:
        database = Database(settings.resolved_database_url)
        try:
            async with database.session() as session, session.begin():
                return await schedule_deployment_runs(
                    session, max_runs=5, horizon=timedelta(days=2), now=now
                )
        finally:
            await database.dispose()

    return asyncio.run(run())


def _scheduled(client: SkyrunClient, deployment_id: uuid.UUID) -> list[FlowRun]:
    return client.filter_flow_runs(
        FlowRunFilter(
            deployment_id=deployment_id,
            state_type=[StateType.SCHEDULED],
            sort="expected_start_time_asc",
        )
    ).items


def _times(runs: list[FlowRun]) -> list[datetime]:
    return [run.expected_start_time.astimezone(UTC) for run in runs if run.expected_start_time]


def test_changing_a_deployment_replaces_its_future_scheduled_runs(project: ModuleType) -> None:
    client = get_client()
    settings = Settings()
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    deployment_id = project.load.deploy("hourly", parameters={"n": 1}, interval=3600)
    manual = client.create_deployment_run(
        deployment_id, DeploymentRunCreate(scheduled_time=now + timedelta(hours=5))
    )

    assert _schedule_runs(settings, now) == 5
    assert _schedule_runs(settings, now) == 0  # idempotent
    auto = [run for run in _scheduled(client, deployment_id) if run.auto_scheduled]
    assert _times(auto) == [hour + timedelta(hours=k) for k in range(1, 6)]
    assert all(run.parameters == {"n": 1} for run in auto)

    # Redeploying with another schedule and parameters: the old future runs go.
    project.load.deploy("hourly", parameters={"n": 2}, interval=7200)
    remaining = _scheduled(client, deployment_id)
    assert [run.id for run in remaining] == [manual.id]  # a manual run is kept
    assert _schedule_runs(settings, now) == 5
    auto = [run for run in _scheduled(client, deployment_id) if run.auto_scheduled]
    first = _times(auto)[0]
    assert first > now and first.hour % 2 == 0
    assert _times(auto) == [first + timedelta(hours=2 * k) for k in range(5)]
    assert all(run.parameters == {"n": 2} for run in auto)

    # So does an update through the API, and pausing stops the scheduler.
    client.update_deployment(
        deployment_id,
        DeploymentUpdate(
            schedules=[DeploymentScheduleCreate(schedule={"cron": "30 6 * * *"})],
        ),
    )
    assert [run.id for run in _scheduled(client, deployment_id)] == [manual.id]
    assert _schedule_runs(settings, now) == 2  # two days ahead
    auto = [run for run in _scheduled(client, deployment_id) if run.auto_scheduled]
    assert [(t.hour, t.minute) for t in _times(auto)] == [(6, 30), (6, 30)]

    client.update_deployment(deployment_id, DeploymentUpdate(paused=True))
    assert [run.id for run in _scheduled(client, deployment_id)] == [manual.id]
    assert _schedule_runs(settings, now) == 0


def test_serve_loop_limit_crash_and_stop(project: ModuleType) -> None:
    """The loop behind flow.serve(), stepped by hand on the embedded database."""
    client = get_client()
    deployment_id = deploy_flow(project.crash, "served", client=client, quiet=True)
    server = DeploymentServer(client, client.read_deployment(deployment_id), 1, 0.1)
    crashing = client.create_deployment_run(deployment_id)
    slow = client.create_deployment_run(
        deployment_id, DeploymentRunCreate(parameters={"code": 0, "sleep": 120})
    )
    server.poll_once()
    assert [child.run.id for child in server.children] == [crashing.id]  # limit 1
    assert _state_of(client, slow.id) is StateType.SCHEDULED

    server.children[0].process.wait(60)
    server.poll_once()
    crashed = client.read_flow_run(crashing.id).state
    assert crashed is not None and crashed.type is StateType.CRASHED
    assert crashed.message is not None and "exited with code 3" in crashed.message
    assert [child.run.id for child in server.children] == [slow.id]

    wait_for(lambda: _state_of(client, slow.id) is StateType.RUNNING, 60, "the slow run")
    server.stop()
    assert server.children == []
    assert _state_of(client, slow.id) is StateType.CRASHED
    with pytest.raises(DeploymentError, match="limit must be 1 or more"):
        project.crash.serve("served", limit=0)


def _state_of(client: SkyrunClient, run_id: uuid.UUID) -> StateType | None:
    state = client.read_flow_run(run_id).state
    return state.type if state else None


# -- flow.serve() -------------------------------------------------------------------

SERVE_SCRIPT = """
import sys

from flows.etl import load

load.serve("served", interval=float(sys.argv[1]), parameters={"n": 1}, poll_seconds=0.2)
"""


def completed_auto_run(client: SkyrunClient, deployment_id: uuid.UUID) -> FlowRun | None:
    """A COMPLETED run of the deployment that its schedule created, if there is one yet."""
    runs = client.filter_flow_runs(
        FlowRunFilter(deployment_id=deployment_id, state_type=[StateType.COMPLETED])
    ).items
    return next((run for run in runs if run.auto_scheduled), None)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """`skyrun server start` with a fast scheduler; yields its API URL."""
    server = ServerProcess(tmp_path / "server-home", SKYRUN_SCHEDULER_INTERVAL="0.5")
    yield server.api_url
    server.stop()


def test_serve_runs_deployment_runs_and_scheduled_runs(tmp_path: Path, server: str) -> None:
    home = tmp_path / "client-home"
    root = tmp_path / "project"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "etl.py").write_text(FLOW_FILE)
    (root / "serve.py").write_text(SERVE_SCRIPT)
    env = clean_env(home, SKYRUN_API_URL=server)
    client = SkyrunClient(Settings(home=home, api_url=server))
    serve_log = tmp_path / "serve.log"
    with serve_log.open("wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "serve.py", "4"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: b"Press Ctrl-C" in serve_log.read_bytes(), 60, "flow.serve()")
            text = serve_log.read_text()
            assert "Serving deployment 'load-rows/served'" in text
            assert "skyrun deployment run load-rows/served" in text
            deployment = client.read_deployment_by_name("load-rows", "served")
            assert deployment.work_pool_name is None
            assert deployment.entrypoint == "flows/etl.py:load"

            triggered = subprocess.run(
                [str(SKYRUN), "deployment", "run", "load-rows/served", "--param", "label=crates",
                 "-o", "json"],
                env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert triggered.returncode == 0, triggered.stderr
            run_id = uuid.UUID(json.loads(triggered.stdout)["id"])

            def finished(flow_run_id: uuid.UUID) -> FlowRun | None:
                flow_run = client.read_flow_run(flow_run_id)
                return flow_run if flow_run.state and flow_run.state.is_final else None

            done = wait_for(lambda: finished(run_id), 90, "the triggered run to finish")
            assert done.state is not None and done.state.type is StateType.COMPLETED, done.state
            assert done.parameters == {"n": 1, "label": "crates"}
            history = [state.type for state in client.read_flow_run_states(run_id)]
            assert history == [
                StateType.SCHEDULED,
                StateType.PENDING,
                StateType.RUNNING,
                StateType.COMPLETED,
            ]

            # The server's scheduler creates runs from the schedule; serve runs them too.
            auto = wait_for(
                lambda: completed_auto_run(client, deployment.id), 90, "a scheduled run to complete"
            )
            assert auto.parameters == {"n": 1}
            # The run reports COMPLETED just before its process exits and serve reaps it.
            ended = f"Flow run '{done.name}' ended COMPLETED."
            wait_for(lambda: ended in serve_log.read_text(), 60, "serve to reap the run")
        finally:
            code = stop(serve)
    output = serve_log.read_text()
    assert code == 0, output
    assert f"Started flow run '{done.name}'" in output
    assert f"Flow run '{done.name}' ended COMPLETED." in output
    assert "loaded 1 crates" in output
    assert output.rstrip().endswith("Stopped serving.")
    client.close()


def test_serve_without_a_server_schedules_its_own_runs(tmp_path: Path) -> None:
    """Embedded mode has no server process: serve runs the scheduler itself."""
    home = tmp_path / "home"
    root = tmp_path / "project"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "etl.py").write_text(FLOW_FILE)
    (root / "serve.py").write_text(SERVE_SCRIPT)
    serve_log = tmp_path / "serve.log"
    with serve_log.open("wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "serve.py", "2"],
            cwd=root,
            env=clean_env(home, SKYRUN_SCHEDULER_INTERVAL="0.5"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = SkyrunClient(Settings(home=home))
        try:
            # serve() prints this after "Press Ctrl-C to stop.", once its services run:
            # waiting for the earlier line and then asserting this one was a race.
            wait_for(
                lambda: b"scheduling runs in this process" in serve_log.read_bytes(),
                60,
                "flow.serve() to start its own scheduler",
            )
            deployment = client.read_deployment_by_name("load-rows", "served")
            auto = wait_for(
                lambda: completed_auto_run(client, deployment.id), 90, "a scheduled run to complete"
            )
            assert auto.parameters == {"n": 1}
        finally:
            code = stop(serve)
            client.close()
    assert code == 0, serve_log.read_text()
