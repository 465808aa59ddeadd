"""Helpers for the project-file acceptance tests: the guide's weather flow, a fake weather
service on loopback, and `skyrun` commands run in a project folder as a user would."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from processes import SKYRUN, clean_env

# The reference guide's flow, word for word but for skyrun's names and the URL.
WEATHER_FLOW = '''\
import httpx
from skyrun import flow, task
from skyrun.artifacts import create_markdown_artifact

@task
def mark_it_down(temp):
    markdown_report = f"""# Weather Report
## Recent weather

| Time        | Temperature |
|:--------------|-------:|
| Now | {temp} |
| In 1 hour       | {temp + 2} |
"""
    create_markdown_artifact(
        key="weather-report",
        markdown=markdown_report,
        description="Very scientific weather report",
    )


@flow
def fetch_weather(lat: float, lon: float):
    base_url = "WEATHER_URL"
    weather = httpx.get(
        base_url,
        params=dict(latitude=lat, longitude=lon, hourly="temperature_2m"),
    )
    most_recent_temp = float(weather.json()["hourly"]["temperature_2m"][0])
    mark_it_down(most_recent_temp)


if __name__ == "__main__":
    fetch_weather(38.9, -77.0)
'''

TEMPERATURE = 21.5


class _Weather(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"hourly": {"temperature_2m": [TEMPERATURE, 22.0]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def weather_service() -> Iterator[str]:
    """A fake open-meteo on a free loopback port; yields its forecast URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Weather)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/forecast/"
    finally:
        server.shutdown()
        server.server_close()


def write_weather_project(directory: Path, url: str) -> Path:
    """The guide's layout: `flows/weather_flow.py` under the project folder."""
    (directory / "flows").mkdir(parents=True, exist_ok=True)
    path = directory / "flows" / "weather_flow.py"
    path.write_text(WEATHER_FLOW.replace("WEATHER_URL", url))
    return path


def skyrun(
    directory: Path, home: Path, api_url: str | None, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`skyrun ARGS` in `directory`, not in a terminal, against the server at `api_url`."""
    extra = {"SKYRUN_API_URL": api_url} if api_url else {}
    return subprocess.run(
        [str(SKYRUN), *args],
        cwd=directory,
        env=clean_env(home, **extra, **env),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )


def _step(steps: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [arguments] = [step[key] for step in steps for key in step if key.endswith(name)]
    return arguments  # type: ignore[no-any-return]


def edit_docker_project(
    directory: Path, base_image: str, deployments: list[dict[str, Any]] | None = None
) -> None:
    """What a user of this machine edits in a docker project's skyrun.yaml: the base image
    (no Docker Hub here), a plain-HTTP registry, and the deployments when given."""
    path = directory / "skyrun.yaml"
    data = yaml.safe_load(path.read_text())
    _step(data["build"], "build_docker_image")["base_image"] = base_image
    _step(data["push"], "push_docker_image")["tls_verify"] = False
    if deployments is not None:
        data["deployments"] = deployments
    path.write_text(yaml.safe_dump(data, sort_keys=False))
