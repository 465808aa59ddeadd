"""Real skyrun processes for tests: a server on a free port, waiting, stopping.

Shared by the integration and acceptance tests: pytest puts this folder (the
root conftest.py's) on sys.path, so any test imports it as `processes`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

SKYRUN = Path(sys.executable).parent / "skyrun"
SERVER_START_TIMEOUT = 60  # a guard against a server that never starts, not a timing test
# A server on PostgreSQL refuses to start without an encryption key for block secrets;
# every test server shares this one, as replicas must.
TEST_ENCRYPTION_KEY = "dGVzdC1rZXktZm9yLXNreXJ1bi10ZXN0cy0zMmJ5dGU="
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without SKYRUN_* settings, rooted at `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYRUN_")}
    env["SKYRUN_HOME"] = str(home)
    env.update(extra)
    return env


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def stop(process: subprocess.Popen[Any], timeout: float = 20.0) -> int:
    """SIGTERM, then SIGKILL if it is still running after `timeout`; its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class ServerProcess:
    """`skyrun server start` on its own SKYRUN_HOME, healthy when constructed.

    Args:
        home: its SKYRUN_HOME (created); its log goes to `home/server.log`.
        port: where to listen (a free port when None; given, to restart on it).
        database_url: SKYRUN_DATABASE_URL, else SQLite under `home`.
        env: more SKYRUN_* settings for it.
    """

    def __init__(
        self,
        home: Path,
        *,
        port: int | None = None,
        database_url: str | None = None,
        **env: str,
    ) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        if database_url:
            env["SKYRUN_DATABASE_URL"] = database_url
            if not database_url.startswith("sqlite"):
                env.setdefault("SKYRUN_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
        self.log_path = home / "server.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(SKYRUN), "server", "start", "--port", str(self.port)],
            env=clean_env(home, **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(self._healthy, SERVER_START_TIMEOUT, f"the server (log: {self.log_path})")
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the server exited early:\n{self.log_path.read_text()}")
        try:
            return httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        stop(self.process)
        self._log.close()
