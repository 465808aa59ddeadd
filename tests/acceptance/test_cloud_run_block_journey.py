"""Acceptance: the guide's journey with a real gcp-credentials block. The emulator is given a
service-account key and refuses calls without a credential of that key; the block holds
the key, the pool's `credentials` names the block, and the run completes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml
from project_support import TEMPERATURE, skyrun, weather_service, write_weather_project
from worker_support import ServerProcess, WorkerProcess

from cloud_run_emulator import Emulator, service_account_key
from processes import clean_env, free_port

POOL = "my-cloud-run-pool"
DEPLOYMENT = "gcp-weather-deploy"


def emulator_env(home: Path) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return clean_env(home, PATH=path)


def test_a_gcp_credentials_block_authenticates_the_worker(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "weather-project"
    project.mkdir()
    port = free_port()
    key_file = tmp_path / "key.json"
    service_account_key(key_file, token_uri=f"http://127.0.0.1:{port}/token")
    server = ServerProcess(home)
    worker = None
    try:
        with (
            weather_service() as weather,
            Emulator(
                home, "--service-account-key", str(key_file), port=port, env=emulator_env(home)
            ) as cloud_run,
        ):
            write_weather_project(project, weather)
            api = server.api_url

            def ok(*args: str) -> str:
                done = skyrun(project, home, api, *args)
                assert done.returncode == 0, done.stdout + done.stderr
                return done.stdout

            ok(
                "block",
                "create",
                "gcp-credentials",
                "my-creds",
                "--field",
                f"service_account_info=@{key_file}",
                "--field",
                "project=skyrun-test",
            )
            assert "********" in ok("block", "inspect", "gcp-credentials/my-creds")
            ok("work-pool", "create", POOL, "--type", "cloud-run")
            ok(
                "work-pool",
                "update",
                POOL,
                "--set",
                "region=us-central1",
                "--set",
                "credentials=gcp-credentials/my-creds",
                "--set",
                f"api_endpoint={cloud_run.url}",
                "--set",
                "image=us-docker.pkg.dev/skyrun-test/flows/weather:1",
            )
            ok("init", "--recipe", "local")
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
            ok("deploy", "--name", DEPLOYMENT)
            worker = WorkerProcess(server, POOL, "-t", "cloud-run")
            ran = skyrun(
                project, home, api, "deployment", "run", f"fetch-weather/{DEPLOYMENT}", "--watch"
            )
            assert ran.returncode == 0, ran.stdout + ran.stderr + worker.output()
            assert "COMPLETED" in ran.stdout
            assert f"| Now | {TEMPERATURE} |" in ok("artifact", "inspect", "weather-report")
            calls = cloud_run.calls()
            assert calls.get("jobs.create") == 1, calls
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
