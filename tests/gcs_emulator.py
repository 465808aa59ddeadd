"""A GCS emulator (gcp-storage-emulator from PyPI) on a free loopback port, for tests.

Import the fixtures into a test module (`from gcs_emulator import gcs, gcs_emulator`):
`gcs_emulator` starts one in-memory emulator per session (per xdist worker); `gcs` points
STORAGE_EMULATOR_HOST at it for one test and gives a google-cloud-storage client.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

START_TIMEOUT = 60  # a guard against a hang, not a timing assertion


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """The emulator's URL (http://127.0.0.1:PORT), running until the session ends."""
    port = _free_port()
    program = Path(sys.executable).with_name("gcp-storage-emulator")
    process = subprocess.Popen(
        [str(program), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gcp-storage-emulator exited: {process.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            httpx.get(f"{url}/storage/v1/b", params={"project": "skyrun"}, timeout=2)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def gcs(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> storage.Client:
    """A client of the emulator, with STORAGE_EMULATOR_HOST set for the code under test."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    return storage.Client(project="skyrun", credentials=AnonymousCredentials())
