"""`skyrun worker start --with-healthcheck` with a bad or taken $PORT: one line saying what
to fix, no traceback; and the pool and type from SKYRUN_WORKER_POOL / SKYRUN_WORKER_TYPE
(how the worker image's fixed command is pointed at a pool)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from processes import SKYRUN, clean_env

CLI_TIMEOUT = 60  # a guard against hangs, not a timing assertion


def worker_start(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SKYRUN), "worker", "start", *args],
        env=clean_env(home, NO_COLOR="1", COLUMNS="200", **env),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def test_a_port_that_is_not_a_number_is_refused_before_anything_is_created(
    tmp_path: Path,
) -> None:
    result = worker_start(tmp_path, "-p", "gcp-pool", "--with-healthcheck", PORT="http")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "PORT='http' is not a port number" in " ".join(result.stderr.split())
    assert not (tmp_path / "skyrun.db").exists()  # refused before the pool was made


def test_a_taken_port_stops_the_worker_with_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # Pool and type from the environment, as the worker image's CMD takes them.
        result = worker_start(
            tmp_path,
            "--with-healthcheck",
            PORT=str(port),
            SKYRUN_WORKER_POOL="env-pool",
            SKYRUN_WORKER_TYPE="process",
        )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert f"cannot serve the health check on 0.0.0.0:{port}" in message, result.stderr
    assert "set PORT to a free port" in message
    # The pool named by SKYRUN_WORKER_POOL was the one the worker set up.
    listed = subprocess.run(
        [str(SKYRUN), "work-pool", "ls"],
        env=clean_env(tmp_path, NO_COLOR="1", COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert "env-pool" in listed.stdout, listed.stdout + listed.stderr
