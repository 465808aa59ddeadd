"""`skyrun cloud-run emulator` as a subprocess on a free port, and Google's clients of it.

Import into a test module (`from cloud_run_emulator import cloud_run_emulator`):
`cloud_run_emulator` is one process-mode emulator per session (per xdist worker); for
other options start an `Emulator(...)` yourself (it is a context manager). Faults:
`emulator.fault(method="jobs.create", count=3, status=429, project="p1")` (with a project,
only that project's calls meet it: use a project per test on the shared emulator); call counts:
`emulator.calls()`. See skyrun.integrations.gcp.emulator.faults for the shapes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import run_v2

from processes import SKYRUN, free_port, stop, wait_for

START_TIMEOUT = 60  # a guard against a hang, not a timing assertion
PROJECT = "skyrun-test"
REGION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"


def service_account_key(
    path: Path, token_uri: str, email: str = "runner@skyrun-test.iam.gserviceaccount.com"
) -> dict[str, Any]:
    """Write a fresh service-account key (a real RSA key) to `path`; its info."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "emulator-test-key",
        "private_key": pem,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return info


class Emulator:
    """A running `skyrun cloud-run emulator`.

    Args:
        work_dir: its --state-dir (with `persist`) or where its log goes.
        port: where it listens (free when None; given, to restart on it).
        args: more command-line options (e.g. "--execute", "image").
        persist: pass --state-dir work_dir/state.
        env: its environment (default: this process's, with this venv's bin first on
            PATH); tasks in process mode take PATH, HOME and a few more from it.
    """

    def __init__(
        self,
        work_dir: Path,
        *args: str,
        port: int | None = None,
        persist: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = work_dir / "emulator.log"
        self._log = self.log_path.open("ab")
        start = self._log.tell()  # a restart appends to the same log
        command = [str(SKYRUN), "cloud-run", "emulator", "--port", str(self.port), *args]
        if persist:
            command += ["--state-dir", str(work_dir / "state")]
        if env is None:
            # Tasks take PATH from the emulator: put this venv's `skyrun` and `python` first.
            env = {**os.environ, "PATH": f"{SKYRUN.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + START_TIMEOUT
        while b"listening on" not in self.log_path.read_bytes()[start:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the emulator did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def jobs(self, credentials: Credentials | None = None) -> run_v2.JobsClient:
        """Google's JobsClient pointed here (anonymous unless `credentials`)."""
        return run_v2.JobsClient(
            credentials=credentials or AnonymousCredentials(),
            transport="rest",
            client_options=ClientOptions(api_endpoint=self.url),
        )

    def executions(self, credentials: Credentials | None = None) -> run_v2.ExecutionsClient:
        """Google's ExecutionsClient pointed here."""
        return run_v2.ExecutionsClient(
            credentials=credentials or AnonymousCredentials(),
            transport="rest",
            client_options=ClientOptions(api_endpoint=self.url),
        )

    def fault(self, **fault: Any) -> None:
        """Queue a fault (`POST /_emulator/faults`)."""
        httpx.post(f"{self.url}/_emulator/faults", json=fault, timeout=10).raise_for_status()

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        httpx.delete(f"{self.url}/_emulator/faults", timeout=10).raise_for_status()

    def calls(self, project: str | None = None) -> dict[str, int]:
        """API calls received so far, by method (only those under `project`, given one)."""
        params = {"project": project} if project else {}
        response = httpx.get(f"{self.url}/_emulator/calls", params=params, timeout=10)
        calls: dict[str, int] = response.json()["calls"]
        return calls

    def finished(self) -> list[dict[str, Any]]:
        """Every finished execution's times (`GET /_emulator/executions`)."""
        response = httpx.get(f"{self.url}/_emulator/executions", timeout=10)
        executions: list[dict[str, Any]] = response.json()["executions"]
        return executions

    def wait_operation(self, name: str, seconds: float) -> dict[str, Any]:
        """operations.wait for at most `seconds`: the Operation JSON."""
        response = httpx.post(
            f"{self.url}/v2/{name}:wait", json={"timeout": f"{seconds}s"}, timeout=seconds + 30
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def wait_done(self, name: str, timeout: float = 60) -> run_v2.Execution:
        """The execution `name` once it has completed."""
        client = self.executions()
        return wait_for(
            lambda: (e := client.get_execution(name=name)).completion_time and e,
            timeout,
            f"execution {name} to complete",
            interval=0.05,
        )

    def stop(self) -> None:
        """Stop it (SIGTERM: its running tasks are killed)."""
        stop(self.process)
        self._log.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def cloud_run_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One process-mode emulator for the session, serving Cloud Run's regions."""
    emulator = Emulator(tmp_path_factory.mktemp("cloud-run-emulator"))
    try:
        yield emulator
    finally:
        emulator.stop()


def python_job(code: str, **template: Any) -> run_v2.Job:
    """A job whose one container runs `python -c code` (process mode needs a command)."""
    task = {"max_retries": 0, **template.pop("task", {})}
    container = {"image": "localhost/unused:1", "command": [sys.executable, "-c", code]}
    container.update(template.pop("container", {}))
    return run_v2.Job(
        template=run_v2.ExecutionTemplate(
            template=run_v2.TaskTemplate(containers=[run_v2.Container(**container)], **task),
            **template,
        )
    )
