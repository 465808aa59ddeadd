"""`skyrun server start` beyond loopback: refused without auth, served with auth or when
explicitly told it is insecure (the installed executable, on a free port)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from worker_support import SKYRUN, clean_env, free_port, wait_for

ALL_INTERFACES = "0.0.0.0"


@pytest.mark.parametrize(
    ("host_args", "env"),
    [
        pytest.param(("--host", ALL_INTERFACES), {}, id="--host"),
        pytest.param((), {"SKYRUN_SERVER_HOST": ALL_INTERFACES}, id="SKYRUN_SERVER_HOST"),
    ],
)
def test_listening_beyond_loopback_without_auth_is_refused(
    tmp_path: Path, host_args: tuple[str, ...], env: dict[str, str]
) -> None:
    result = subprocess.run(
        [str(SKYRUN), "server", "start", *host_args, "--port", str(free_port())],
        env=clean_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())  # the error console may wrap long lines
    assert f"refusing to listen on {ALL_INTERFACES} without authentication" in message
    assert "--insecure-no-auth" in message
    assert "--auth" in message


@contextmanager
def server_on_all_interfaces(home: Path, *args: str, **env: str) -> Iterator[str]:
    """`skyrun server start --host 0.0.0.0` on a free port; yields its API URL once healthy."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "server.log"
    command = [str(SKYRUN), "server", "start", "--host", ALL_INTERFACES, "--port", str(port)]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [*command, "--no-services", *args],
            env=clean_env(home, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        api_url = f"http://127.0.0.1:{port}/api"

        def healthy() -> bool:
            if server.poll() is not None:
                raise AssertionError(f"the server exited early:\n{log_path.read_text()}")
            try:
                return httpx.get(f"{api_url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_for(healthy, 60, f"the server on {ALL_INTERFACES}:{port} (log: {log_path})")
            yield api_url
        finally:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.mark.parametrize(
    ("args", "env", "auth_on"),
    [
        pytest.param(("--insecure-no-auth",), {}, False, id="--insecure-no-auth"),
        pytest.param((), {"SKYRUN_SERVER_ALLOW_INSECURE": "true"}, False, id="allow-insecure"),
        pytest.param(("--auth",), {}, True, id="--auth"),
    ],
)
def test_listening_beyond_loopback_starts_with_auth_or_the_insecure_flag(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], auth_on: bool
) -> None:
    with server_on_all_interfaces(tmp_path, *args, **env) as api_url:
        # /api/health answers without a key either way; the rest needs one with auth on.
        flows = httpx.get(f"{api_url}/flows", timeout=10)
        assert flows.status_code == (401 if auth_on else 200), flows.text
    # Served without auth beyond loopback: the operator is told so, in the server's output.
    log = " ".join((tmp_path / "server.log").read_text().split())
    assert ("WITHOUT authentication" in log) is not auth_on, log
