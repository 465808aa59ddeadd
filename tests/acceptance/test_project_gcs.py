"""Acceptance: `skyrun init --recipe gcs`, `skyrun deploy` uploading the project to a bucket
of a real GCS emulator, and a process worker whose flow run downloads it into an empty
folder, runs the weather flow to COMPLETED and stores its artifact.

The emulator is gcp-storage-emulator from PyPI (tests/gcs_emulator.py), reached by Google's
own client through STORAGE_EMULATOR_HOST.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from google.cloud import storage
from project_support import TEMPERATURE, skyrun, weather_service, write_weather_project
from worker_support import ServerProcess, WorkerProcess

from gcs_emulator import gcs, gcs_emulator

__all__ = ["gcs", "gcs_emulator"]  # fixtures, used by name

POOL = "gcs-pool"


def test_gcs_recipe_uploads_at_deploy_and_each_run_downloads(
    tmp_path: Path, gcs_emulator: str, gcs: storage.Client
) -> None:
    gcs.create_bucket("weather-code")
    home, project = tmp_path / "home", tmp_path / "weather"
    project.mkdir()
    (project / "local-only.txt").write_text("ignored")
    emulator = {"STORAGE_EMULATOR_HOST": gcs_emulator}
    server = ServerProcess(home)
    worker = None
    try:
        with weather_service() as url:
            write_weather_project(project, url)
            api = server.api_url
            created = skyrun(project, home, api, "work-pool", "create", POOL, "--type", "process")
            assert created.returncode == 0, created.stderr
            init = skyrun(
                project, home, api, "init", "--recipe", "gcs",
                "--field", "bucket=weather-code", "--field", "folder=weather",
            )  # fmt: skip
            assert init.returncode == 0, init.stderr
            (project / ".skyrunignore").write_text(
                (project / ".skyrunignore").read_text() + "\nlocal-only.txt\n"
            )
            path = project / "skyrun.yaml"
            data = yaml.safe_load(path.read_text())
            data["deployments"] = [
                {
                    "name": "weather-from-gcs",
                    "entrypoint": "flows/weather_flow.py:fetch_weather",
                    "parameters": {"lat": 14.5994, "lon": 28.6731},
                    "work_pool": {"name": POOL},
                }
            ]
            path.write_text(yaml.safe_dump(data, sort_keys=False))

            deployed = skyrun(
                project, home, api, "deploy", "--name", "weather-from-gcs", **emulator
            )
            assert deployed.returncode == 0, deployed.stdout + deployed.stderr
            names = sorted(blob.name for blob in gcs.list_blobs("weather-code"))
            assert "weather/flows/weather_flow.py" in names
            assert "weather/local-only.txt" not in names

            # The run starts in an empty temporary folder (the process worker's default) and
            # has nothing but what it downloads.
            worker = WorkerProcess(server, POOL, **emulator)
            ran = skyrun(
                project, home, api, "deployment", "run", "fetch-weather/weather-from-gcs", "--watch"
            )
            assert ran.returncode == 0, ran.stdout + ran.stderr + worker.output()
            artifact = skyrun(project, home, api, "artifact", "inspect", "weather-report")
            assert f"| Now | {TEMPERATURE} |" in artifact.stdout, artifact.stdout
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
