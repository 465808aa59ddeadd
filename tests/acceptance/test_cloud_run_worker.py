"""Acceptance: the guide's weather flow through a `cloud-run` pool on the Cloud Run emulator.

As a new user would: `skyrun work-pool create --type cloud-run`, the pool pointed at
`skyrun cloud-run emulator` (process mode) with `work-pool update --set`, `skyrun worker
start -t cloud-run`, `skyrun deploy`, `skyrun deployment run --watch` -> COMPLETED, the
artifact readable from the API, and the run's Cloud Run job gone afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml
from project_support import TEMPERATURE, skyrun, weather_service, write_weather_project
from worker_support import ServerProcess, WorkerProcess

from processes import SKYRUN, clean_env, free_port, stop, wait_for
from skyrun.schemas.core import FlowRunFilter

POOL = "my-cloud-run-pool"
DEPLOYMENT = "gcp-weather-deploy"
FULL_NAME = f"fetch-weather/{DEPLOYMENT}"
READY = "Cloud Run emulator listening on"


@contextmanager
def emulator_process(home: Path) -> Iterator[str]:
    """`skyrun cloud-run emulator` on a free port (process mode); yields its URL."""
    port = free_port()
    log_path = home / "emulator.log"
    home.mkdir(parents=True, exist_ok=True)
    # Its tasks run `skyrun flow-run execute` as a container would: find this skyrun.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(SKYRUN), "cloud-run", "emulator", "--port", str(port)],
            env=clean_env(home, PATH=path),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: READY in log_path.read_text(), 60, f"the emulator ({log_path})")
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)


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
        with weather_service() as weather, emulator_process(home) as emulator:
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
