"""The reference guide's UI path, in Chromium, on a real server, worker and Cloud Run emulator.

As the guide's user clicks it: create the `gcp-credentials` block by pasting a
service-account key, edit the cloud-run pool's region, credentials and service
account in its template-variables form, Quick Run the weather deployment (its
required parameters asked for first), watch the run reach COMPLETED without
reloading, open its Artifacts tab and read the weather table. The emulator checks
that every Cloud Run call is signed by that very key, so the block the browser
made is the one the worker used.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cloud_run_emulator import Emulator, service_account_key
from conftest import screenshot
from processes import SKYRUN, ServerProcess, clean_env, free_port, stop, wait_for

# The acceptance tests' weather project and fake weather service.
sys.path.insert(0, str(Path(__file__).parent.parent / "acceptance"))
from project_support import TEMPERATURE, skyrun, weather_service, write_weather_project

POOL = "my-cloud-run-pool"
DEPLOYMENT = "gcp-weather-deploy"


class GuideStack:
    """A server, the emulator checking a generated key, the weather project, and (when
    started) a cloud-run worker with its health check; stopped in reverse order."""

    def __init__(self, tmp: Path, weather_url: str) -> None:
        self.home = tmp / "home"
        self.project = tmp / "weather-project"
        write_weather_project(self.project, weather_url)
        port = free_port()
        self.key = service_account_key(tmp / "key.json", f"http://127.0.0.1:{port}/token")
        self.server = ServerProcess(self.home)
        self.api_url = self.server.api_url
        self.ui_url = self.api_url.removesuffix("/api")
        self.worker: subprocess.Popen[bytes] | None = None
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        try:
            self.emulator = Emulator(
                self.home / "emulator",
                "--service-account-key",
                str(tmp / "key.json"),
                port=port,
                env=clean_env(self.home, PATH=path),
            )
        except BaseException:
            self.server.stop()
            raise

    def cli(self, *args: str) -> str:
        done = skyrun(self.project, self.home, self.api_url, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start_worker(self) -> None:
        health = free_port()
        self.worker_log = self.home / "worker.log"
        with self.worker_log.open("wb") as log:
            self.worker = subprocess.Popen(
                [
                    str(SKYRUN),
                    "worker",
                    "start",
                    "-p",
                    POOL,
                    "-t",
                    "cloud-run",
                    "--with-healthcheck",
                ],
                env=clean_env(self.home, SKYRUN_API_URL=self.api_url, PORT=str(health)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_for(lambda: _answers(f"http://127.0.0.1:{health}/health"), 60, "the worker's health")

    def stop(self) -> None:
        if self.worker is not None:
            stop(self.worker)
        self.emulator.stop()
        self.server.stop()


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuideStack]:
    with weather_service() as weather:
        stack = GuideStack(tmp_path_factory.mktemp("guide"), weather)
        try:
            yield stack
        finally:
            stack.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_guides_ui_path_runs_the_weather_flow_on_cloud_run(
    journey: GuideStack, page: Any
) -> None:
    from playwright.sync_api import expect

    ui = journey.ui_url
    # What the guide does outside the UI: the pool (from the CLI), the project deployed
    # without parameter values (so Quick Run must ask for lat and lon).
    journey.cli("work-pool", "create", POOL, "--type", "cloud-run")
    journey.cli(
        "work-pool",
        "update",
        POOL,
        "--set",
        f"api_endpoint={journey.emulator.url}",
        "--set",
        f"image=us-docker.pkg.dev/{journey.key['project_id']}/flows/weather:1",
    )
    journey.cli("init", "--recipe", "local")
    config = yaml.safe_load((journey.project / "skyrun.yaml").read_text())
    config["deployments"] = [
        {
            "name": DEPLOYMENT,
            "entrypoint": "flows/weather_flow.py:fetch_weather",
            "work_pool": {"name": POOL},
        }
    ]
    (journey.project / "skyrun.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    journey.cli("deploy", "--name", DEPLOYMENT)

    # 1. The credentials block, the key pasted into the form.
    page.goto(f"{ui}/blocks/new?type=gcp-credentials")
    screenshot(page, "guide-block-create")
    page.fill("#block-name", "my-creds")
    page.get_by_label("Project", exact=False).first.fill(journey.key["project_id"])
    page.get_by_label(re.compile("Service account info", re.I)).fill(json.dumps(journey.key))
    page.get_by_role("button", name=re.compile("Create|Save", re.I)).click()
    page.wait_for_url(re.compile(r"/blocks/gcp-credentials/my-creds$"))
    assert journey.key["private_key"].splitlines()[1] not in page.content()
    block = httpx.get(f"{journey.api_url}/blocks/gcp-credentials/my-creds", timeout=10).json()
    assert block["data"]["project"] == journey.key["project_id"]

    # 2. The pool's region, credentials and service account, in its variables form.
    page.goto(f"{ui}/work-pools/{POOL}?tab=variables")
    page.get_by_label("Region", exact=True).fill("us-central1")
    page.get_by_label("GCP credentials", exact=False).select_option(
        label="gcp-credentials/my-creds"
    )
    page.get_by_label("Service account", exact=True).fill(journey.key["client_email"])
    screenshot(page, "guide-pool-variables")
    page.locator("#pool-variables-form [type=submit]").click()
    expect(page.locator("#flash")).to_contain_text("saved", ignore_case=True)
    pool = httpx.get(f"{journey.api_url}/work_pools/{POOL}", timeout=10).json()
    properties = pool["base_job_template"]["variables"]["properties"]
    assert properties["region"]["default"] == "us-central1"
    assert properties["credentials"]["default"] == "gcp-credentials/my-creds"
    assert properties["service_account_name"]["default"] == journey.key["client_email"]

    # 3. The worker, then Quick Run: lat and lon are required, so a form opens first.
    journey.start_worker()
    page.goto(f"{ui}/deployments")
    page.get_by_role("link", name=DEPLOYMENT).click()
    page.locator("#quick-run").click()
    dialog = page.locator("#quick-run-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("lat", exact=False).fill("38.9")
    dialog.get_by_label("lon", exact=False).fill("-77.0")
    screenshot(page, "guide-quick-run")
    dialog.locator("[type=submit]").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}$"))

    # 4. COMPLETED without a reload: the page's own live updates show it.
    page.evaluate("window.__not_reloaded = true")
    expect(page.locator("#run-state")).to_contain_text("Completed", timeout=90_000)
    assert page.evaluate("window.__not_reloaded") is True
    run_id = page.url.rsplit("/", 1)[1]
    run = httpx.get(f"{journey.api_url}/flow_runs/{run_id}", timeout=10).json()
    assert run["parameters"] == {"lat": 38.9, "lon": -77.0}
    assert run["state"]["type"] == "COMPLETED"
    assert run["infrastructure_id"].startswith(f"projects/{journey.key['project_id']}/")
    # The run page names the Cloud Run execution it ran as.
    execution = run["infrastructure_id"].rsplit("/", 1)[1]
    expect(page.locator("#panel-overview")).to_contain_text(execution)

    # 5. The Artifacts tab renders the weather table.
    page.locator("#tab-artifacts").click()
    table = page.locator("#panel-artifacts table")
    expect(table).to_contain_text("Temperature")
    expect(table).to_contain_text(str(TEMPERATURE))
    screenshot(page, "guide-run-artifacts")
