"""Acceptance: the guide's weather flow through a `cloud-run` pool on the Cloud Run emulator.

As a new user would: `skyrun work-pool create --type cloud-run`, the pool pointed at
`skyrun cloud-run emulator` (process mode) with `work-pool update --set`, `skyrun worker
start -t cloud-run`, `skyrun deploy`, `skyrun deployment run --watch` -> COMPLETED, the
artifact readable from the API, and the run's Cloud Run job gone afterwards.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from project_support import TEMPERATURE, skyrun, weather_service, write_weather_project
from worker_support import (
    ServerProcess,
    WorkerProcess,
    deploy,
    pid_alive,
    run_deployment,
    wait_final,
    wait_state,
    write_flows,
)

from cloud_run_emulator import Emulator
from processes import clean_env, wait_for
from skyrun.integrations.gcp.job_template import CLOUD_RUN_JOB_TEMPLATE
from skyrun.jobs.templates import set_variable_default
from skyrun.schemas.core import FlowRunFilter
from skyrun.schemas.deployments import Deployment
from skyrun.schemas.states import StateType
from skyrun.schemas.work_pools import WorkPoolCreate

POOL = "my-cloud-run-pool"
STACK_POOL = "cloud-run-endings"
DEPLOYMENT = "gcp-weather-deploy"
FULL_NAME = f"fetch-weather/{DEPLOYMENT}"


def emulator_env(home: Path) -> dict[str, str]:
    """What the emulator runs tasks with: a clean home, and this skyrun first on PATH (its
    tasks run `skyrun flow-run execute`, as the worker image's would)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return clean_env(home, PATH=path)


def jobs_of(emulator: str, project: str = "local-project", region: str = "us-central1") -> list:
    answer = httpx.get(f"{emulator}/v2/projects/{project}/locations/{region}/jobs", timeout=10)
    answer.raise_for_status()
    return list(answer.json().get("jobs", []))


def test_the_weather_flow_completes_on_a_cloud_run_pool_and_leaves_no_job(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "weather-project"
    project.mkdir()
    server = ServerProcess(home)
    worker = None
    try:
        with weather_service() as weather, Emulator(home, env=emulator_env(home)) as cloud_run:
            emulator = cloud_run.url
            write_weather_project(project, weather)
            api = server.api_url
            created = skyrun(project, home, api, "work-pool", "create", POOL, "--type", "cloud-run")
            assert created.returncode == 0, created.stderr
            updated = skyrun(
                project,
                home,
                api,
                "work-pool",
                "update",
                POOL,
                "--set",
                "region=us-central1",
                "--set",
                f"api_endpoint={emulator}",
                "--set",
                "image=us-docker.pkg.dev/local-project/flows/weather:1",
            )
            assert updated.returncode == 0, updated.stderr
            init = skyrun(project, home, api, "init", "--recipe", "local")
            assert init.returncode == 0, init.stderr
            config = yaml.safe_load((project / "skyrun.yaml").read_text())
            config["deployments"] = [
                {
                    "name": DEPLOYMENT,
                    "entrypoint": "flows/weather_flow.py:fetch_weather",
                    "parameters": {"lat": 14.5994, "lon": 28.6731},
                    "work_pool": {"name": POOL},
                }
            ]
            (project / "skyrun.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            deployed = skyrun(project, home, api, "deploy", "--name", DEPLOYMENT)
            assert deployed.returncode == 0, deployed.stderr

            worker = WorkerProcess(server, POOL, "-t", "cloud-run")
            ran = skyrun(project, home, api, "deployment", "run", FULL_NAME, "--watch")
            assert ran.returncode == 0, ran.stdout + ran.stderr + worker.output()
            assert "COMPLETED" in ran.stdout, ran.stdout + worker.output()

            artifact = skyrun(project, home, api, "artifact", "inspect", "weather-report")
            assert artifact.returncode == 0, artifact.stderr
            assert f"| Now | {TEMPERATURE} |" in artifact.stdout
            wait_for(lambda: not jobs_of(emulator), 30, "the run's job to be deleted")
            [run] = server.client().filter_flow_runs(FlowRunFilter(work_pool_name=POOL)).items
            assert run.infrastructure_id is not None
            assert run.infrastructure_id.startswith(
                "projects/local-project/locations/us-central1/jobs/"
            )
    finally:
        if worker is not None:
            worker.stop()
        server.stop()


ENDINGS_FLOWS = """
import os
import time

from skyrun import flow


@flow
def ok():
    return 1


@flow
def boom():
    raise ValueError("the flow failed on purpose")


@flow
def sleepy(pid_file: str = "", seconds: float = 60.0, until_file: str = ""):
    if pid_file:
        with open(pid_file, "w") as out:
            out.write(str(os.getpid()))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until_file and os.path.exists(until_file)):
        time.sleep(0.1)
"""


class Stack:
    """A server, the emulator and a cloud-run pool pointed at it, for one test."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.flows = tmp_path / "flows"
        write_flows(self.flows, ENDINGS_FLOWS)
        self.server = ServerProcess(self.home)
        self.emulator = Emulator(self.home / "emulator", env=emulator_env(self.home))
        self.client = self.server.client()
        template = CLOUD_RUN_JOB_TEMPLATE
        for name, value in (("api_endpoint", self.emulator.url), ("image", "flows:1")):
            template = set_variable_default(template, name, value)
        self.client.create_work_pool(
            WorkPoolCreate(name=STACK_POOL, type="cloud-run", base_job_template=template)
        )

    def deploy(self, flow_name: str, **job_variables: Any) -> Deployment:
        return deploy(
            self.client,
            self.flows,
            STACK_POOL,
            entrypoint=f"flows.py:{flow_name}",
            job_variables=job_variables,
        )

    def stop(self) -> None:
        self.emulator.stop()
        self.server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("cloud-run-stack"))
    try:
        yield stack
    finally:
        stack.stop()


def test_every_way_an_execution_ends_gives_the_runs_true_state(
    stack: Stack, tmp_path: Path
) -> None:
    client = stack.client
    pid_file = tmp_path / "sleepy.pid"
    exits_early = [sys.executable, "-c", "import sys; sys.exit(4)"]
    # Three 429s and a lost reply on the first create: retried, still one execution.
    stack.emulator.fault(method="jobs.create", count=3, status=429)
    stack.emulator.fault(method="jobs.create", count=1, drop="after")
    runs = {
        "completes": run_deployment(client, stack.deploy("ok")),
        "raises": run_deployment(client, stack.deploy("boom")),
        "exits early": run_deployment(client, stack.deploy("ok", command=exits_early)),
        "times out": run_deployment(client, stack.deploy("sleepy", timeout=3)),
        "cancelled": run_deployment(
            client, stack.deploy("sleepy"), parameters={"pid_file": str(pid_file)}
        ),
    }
    worker = WorkerProcess(stack.server, STACK_POOL, "-t", "cloud-run")
    try:
        cancelled = runs["cancelled"].id
        wait_state(client, cancelled, StateType.RUNNING)
        pid = int(wait_for(lambda: pid_file.is_file() and pid_file.read_text(), 30, "its pid"))
        cancel = skyrun(
            tmp_path, stack.home, stack.server.api_url, "flow-run", "cancel", str(cancelled)
        )
        assert cancel.returncode == 0, cancel.stderr
        final = {what: wait_final(client, run.id, 90) for what, run in runs.items()}
        states = {what: run.state.type for what, run in final.items() if run.state}
        assert states == {
            "completes": StateType.COMPLETED,
            "raises": StateType.FAILED,
            "exits early": StateType.CRASHED,
            "times out": StateType.CRASHED,
            "cancelled": StateType.CANCELLED,
        }, worker.output()
        messages = {what: str(run.state.message) for what, run in final.items() if run.state}
        assert "exited with an exit code of 4" in messages["exits early"], messages
        assert "timeout" in messages["times out"].lower(), messages
        wait_for(lambda: not pid_alive(pid), 30, "the cancelled flow's process to be gone")
        assert stack.emulator.calls().get("executions.cancel", 0) >= 1
        assert stack.emulator.calls().get("jobs.run", 0) == 0
        wait_for(lambda: not jobs_of(stack.emulator.url), 30, "every run's job to be deleted")
    finally:
        worker.stop()


def test_a_worker_killed_mid_run_and_restarted_re_attaches(stack: Stack, tmp_path: Path) -> None:
    client = stack.client
    release = tmp_path / "release"
    parameters = {"until_file": str(release), "seconds": 120.0}
    run = run_deployment(client, stack.deploy("sleepy"), parameters=parameters)
    first = WorkerProcess(stack.server, STACK_POOL, "-t", "cloud-run", "--name", "steady")
    try:
        wait_state(client, run.id, StateType.RUNNING)
        first.process.kill()  # SIGKILL: no chance to hand anything back
        first.process.wait()
    finally:
        first.stop()
    second = WorkerProcess(stack.server, STACK_POOL, "-t", "cloud-run", "--name", "steady")
    try:
        wait_for(lambda: f"{run.id}: watching" in second.output(), 60, "the re-attach")
        release.touch()
        final = wait_final(client, run.id, 60)
        assert final.state is not None and final.state.type == StateType.COMPLETED
        # The re-attached watch deletes the job once the execution ends.
        wait_for(lambda: not jobs_of(stack.emulator.url), 30, "the run's job to be deleted")
        runs = client.filter_flow_runs(FlowRunFilter(work_pool_name=STACK_POOL)).items
        assert len([r for r in runs if r.id == run.id]) == 1
    finally:
        second.stop()
