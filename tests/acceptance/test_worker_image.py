"""Acceptance: the repository's Dockerfile, built for real with Buildah, runs a worker the
way a Cloud Run service does: with $PORT set, the health check answers 200 on it, the
server lists the worker ONLINE, and SIGTERM (what Cloud Run sends to stop an instance)
stops it cleanly.

One build per module (about a minute here): from the session's Debian base image (tests/images.py;
no Docker Hub here) passed as BASE_IMAGE, with this machine's package index passed through
as the auto Dockerfile's builds get it. `buildah run` shares the host's network, so the
worker inside reaches the server on 127.0.0.1. Run twice: with the guide's
`gcloud run deploy --args` as the command, and with the image's own CMD and the pool from
SKYRUN_WORKER_POOL.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from worker_support import ServerProcess, free_port, wait_for

from images import base_image, buildah, image_tools
from skyrun.deploy.dockerfile import pip_index_build_args
from skyrun.schemas.work_pools import WorkerStatus

__all__ = ["base_image", "image_tools"]  # fixtures, used by name

REPO = Path(__file__).resolve().parents[2]
POOL = "gcp-pool"
# The guide deploys `-t cloud-run`; until that worker type's module is in this checkout
# (M5's worker branch) the same image and command are proved with the process type.
WORKER_TYPE = (
    "cloud-run" if (REPO / "src/skyrun/integrations/gcp/worker.py").is_file() else "process"
)
GUIDE_ARGS = (
    "skyrun", "worker", "start", "--install-policy", "always", "--with-healthcheck",
    "-p", POOL, "-t", WORKER_TYPE,
)  # fmt: skip
START_TIMEOUT = 120  # a guard against a worker that never starts, not a timing test


@pytest.fixture(scope="module")
def worker_image(base_image: str) -> Iterator[str]:
    """The worker image built from the repository's Dockerfile, removed afterwards."""
    tag = f"localhost/skyrun-worker-test:{uuid.uuid4().hex[:8]}"
    arguments = {"BASE_IMAGE": base_image, **pip_index_build_args()}
    options = [
        item for name, value in arguments.items() for item in ("--build-arg", f"{name}={value}")
    ]
    started = time.monotonic()
    buildah(
        "bud", "--isolation", "chroot", *options, "-t", tag,
        "-f", str(REPO / "Dockerfile"), str(REPO), timeout=900,
    )  # fmt: skip
    print(f"built {tag} in {time.monotonic() - started:.0f}s")
    try:
        yield tag
    finally:
        buildah("rmi", "--force", tag, check=False)


def image_config(image: str) -> dict[str, object]:
    """The image's OCI config (Cmd, Entrypoint, User, Env, ...)."""
    inspected = json.loads(buildah("inspect", "--type", "image", image).stdout)
    config: dict[str, object] = inspected["OCIv1"]["config"]
    return config


class ImageWorker:
    """`command` run in a working container of `image` (host network), output in a file."""

    def __init__(self, image: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.container = buildah("from", "--pull-never", image).stdout.strip()
        options = [item for name, value in env.items() for item in ("--env", f"{name}={value}")]
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            ["buildah", "run", *options, self.container, "--", *command],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sigterm_worker(self) -> int:
        """SIGTERM to the worker itself, as Cloud Run stops an instance; buildah's exit code.

        `buildah run` does not pass a SIGTERM on (it kills its child), so the signal goes to
        the worker process, which chroot isolation leaves visible on the host.
        """
        # Not buildah's chroot helpers in between (`buildah-chroot-exec skyrun worker ...`):
        # signalled, they kill their child.
        workers = [
            child
            for child in psutil.Process(self.process.pid).children(recursive=True)
            if "worker" in child.cmdline() and not child.cmdline()[0].startswith("buildah")
        ]
        assert workers, f"no worker process under buildah run:\n{self.output()}"
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def run(self, *command: str) -> str:
        """Run `command` in the same container (after the worker), its output."""
        result = buildah("run", self.container, "--", *command)
        return result.stdout

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()
        buildah("rm", self.container, check=False)


def run_worker_until_online(
    server: ServerProcess, image: str, command: list[str], extra_env: dict[str, str]
) -> None:
    """Run the worker from the image; health 200 on $PORT, ONLINE on the server, SIGTERM."""
    port = free_port()
    env = {"SKYRUN_API_URL": server.api_url, "PORT": str(port), **extra_env}
    worker = ImageWorker(image, command, env, server.home / "image-worker.log")
    client = server.client()
    try:

        def health() -> httpx.Response | None:
            if worker.process.poll() is not None:
                raise AssertionError(f"the worker exited early:\n{worker.output()}")
            try:
                # `/`: where Cloud Run's default probes go.
                return httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            except httpx.HTTPError:
                return None

        response = wait_for(health, START_TIMEOUT, f"the health check on $PORT={port}")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "ok"

        def online() -> bool:
            return any(w.status == WorkerStatus.ONLINE for w in client.list_workers(POOL))

        wait_for(online, START_TIMEOUT, "the server to list the worker ONLINE")
        assert client.read_work_pool(POOL).type == WORKER_TYPE

        assert worker.sigterm_worker() == 0, worker.output()
        assert "Stopping (SIGTERM)" in worker.output()
        assert "Traceback" not in worker.output()
        # `--install-policy always` left the image's skyrun the one that runs: pip, run as
        # the image's non-root user, made no second copy under ~/.local.
        where = worker.run("python", "-c", "import skyrun; print(skyrun.__file__)")
        assert where.startswith("/usr/local/lib/"), where
    finally:
        worker.close()


def test_the_guides_gcloud_args_start_a_worker_that_answers_on_port(
    tmp_path: Path, worker_image: str
) -> None:
    config = image_config(worker_image)
    # No ENTRYPOINT: `gcloud run deploy --args` (the container's arguments) is the whole
    # command, as the guide writes it.
    assert not config.get("Entrypoint"), config
    assert config.get("User") == "10001"
    server = ServerProcess(tmp_path / "home")
    try:
        run_worker_until_online(server, worker_image, list(GUIDE_ARGS), {})
    finally:
        server.stop()


def test_the_images_own_command_takes_the_pool_from_the_environment(
    tmp_path: Path, worker_image: str
) -> None:
    command = image_config(worker_image).get("Cmd")
    assert command == ["skyrun", "worker", "start", "--with-healthcheck"]
    server = ServerProcess(tmp_path / "home")
    try:
        run_worker_until_online(
            server,
            worker_image,
            list(command),
            {"SKYRUN_WORKER_POOL": POOL, "SKYRUN_WORKER_TYPE": WORKER_TYPE},
        )
    finally:
        server.stop()
