"""Acceptance: the Cloud Run journey in image mode, with the image `skyrun deploy` built.

`skyrun init --recipe docker` and `skyrun deploy` build the weather project's image with
buildah and push it to a registry on loopback; the deployment's `image` job variable is
`{{ build_image.image }}`; a `cloud-run` worker submits the run to the emulator running
with `--execute image`, which pulls that image from the registry and runs
`skyrun flow-run execute` inside it. The run ends COMPLETED with its artifact stored and
its job deleted: the image skyrun pushed is the image that ran.
"""

from __future__ import annotations

from pathlib import Path

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2
from project_support import (
    TEMPERATURE,
    edit_docker_project,
    skyrun,
    weather_service,
    write_weather_project,
)
from worker_support import ServerProcess, WorkerProcess, wait_for

from cloud_run_emulator import REGION, Emulator
from images import BASE_IMAGE, Registry, base_image, buildah, image_registry, image_tools

__all__ = ["base_image", "image_registry", "image_tools"]  # fixtures, used by name

POOL = "image-cloud-run-pool"
# No credentials against a loopback emulator: the worker acts in its default project.
PROJECT = "local-project"


def _jobs(emulator: str) -> list[str]:
    client = run_v2.JobsClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=emulator),
    )
    return [job.name for job in client.list_jobs(parent=f"projects/{PROJECT}/locations/{REGION}")]


def test_the_image_skyrun_deploy_pushed_runs_the_flow_on_the_emulator(
    tmp_path: Path, base_image: str, image_registry: Registry
) -> None:
    home, project = tmp_path / "home", tmp_path / "weather"
    project.mkdir()
    image_name = f"{image_registry.host}/skyrun-test/cloud-run-weather"
    server = ServerProcess(home)
    worker = None
    try:
        with (
            weather_service() as url,
            Emulator(home / "emulator", "--execute", "image") as cloud_run,
        ):
            write_weather_project(project, url)
            api = server.api_url

            def cli(*args: str) -> str:
                done = skyrun(project, home, api, *args)
                assert done.returncode == 0, done.stdout + done.stderr
                return done.stdout

            cli("work-pool", "create", POOL, "--type", "cloud-run")
            cli(
                "work-pool", "update", POOL, "--set", f"region={REGION}",
                "--set", f"api_endpoint={cloud_run.url}",
            )  # fmt: skip
            cli(
                "init", "--recipe", "docker",
                "--field", f"image_name={image_name}", "--field", "tag=1",
            )  # fmt: skip
            edit_docker_project(
                project,
                BASE_IMAGE,
                [
                    {
                        "name": "weather-in-image",
                        "entrypoint": "flows/weather_flow.py:fetch_weather",
                        "parameters": {"lat": 14.5994, "lon": 28.6731},
                        "work_pool": {
                            "name": POOL,
                            "job_variables": {"image": "{{ build_image.image }}"},
                        },
                    }
                ],
            )
            cli("deploy", "--name", "weather-in-image")
            # Gone from local storage: what runs must come from the registry.
            buildah("rmi", "--force", f"{image_name}:1", check=False)

            worker = WorkerProcess(server, POOL, "-t", "cloud-run")
            ran = skyrun(
                project, home, api, "deployment", "run", "fetch-weather/weather-in-image",
                "--watch", "--watch-timeout", "400",
            )  # fmt: skip
            assert ran.returncode == 0, ran.stdout + ran.stderr + worker.output()
            assert f"| Now | {TEMPERATURE} |" in cli("artifact", "inspect", "weather-report")
            deployment = server.client().read_deployment_by_name(
                "fetch-weather", "weather-in-image"
            )
            assert deployment.job_variables == {"image": f"{image_name}:1"}
            assert cloud_run.calls().get("jobs.create") == 1
            assert cloud_run.calls().get("jobs.run", 0) == 0
            wait_for(lambda: _jobs(cloud_run.url) == [], 60, "the run's job to be deleted")
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
        buildah("rmi", "--force", f"{image_name}:1", check=False)
