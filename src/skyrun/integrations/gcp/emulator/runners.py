"""How one task attempt is started: as a local process, or inside the job's image.

`ProcessRunner` (`--execute process`) runs the container's command and args on this
machine; there is no image to take a default command from, so a container without a
command cannot run. `ImageRunner` (`--execute image`) pulls the job's image from its
registry with buildah once per execution and runs each attempt in a fresh working
container (`buildah run --isolation chroot`, the host's network shared), so the image
a deploy pushed is the image that runs. Either way a task runs in its own process
group, so a timeout or a cancel kills everything it started.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from google.cloud import run_v2


class TaskSetupError(Exception):
    """A task cannot start at all: the message and Cloud Run's condition reason."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass
class Prepared:
    """What every attempt of an execution's tasks runs.

    Attributes:
        argv: the command line.
        image_id: the pulled image (image mode only).
    """

    argv: list[str]
    image_id: str | None = None


class TaskRunner(Protocol):
    """Starts task attempts for one execute mode."""

    async def prepare(self, container: run_v2.Container) -> Prepared:
        """Check what the tasks need (raising TaskSetupError) and settle their command."""
        ...

    def spawn(
        self, prepared: Prepared, env: dict[str, str], working_dir: Path | str, log: IO[bytes]
    ) -> AbstractAsyncContextManager[asyncio.subprocess.Process]:
        """The attempt's process, cleaned up afterwards."""
        ...


class ProcessRunner:
    """Tasks as local processes: the container's command is required."""

    async def prepare(self, container: run_v2.Container) -> Prepared:
        """The container's command and args, or TaskSetupError without a command."""
        if not container.command:
            raise TaskSetupError(
                f"Container '{container.name or 'container-0'}' has no command: the emulator's "
                "process mode runs the container's command and args on this machine, with no "
                "image to take a default from. Set the container's command, or start the "
                "emulator with --execute image."
            )
        if container.working_dir and not Path(container.working_dir).is_dir():
            raise TaskSetupError(
                f"The container's workingDir '{container.working_dir}' is not a directory "
                "on this machine (process mode runs tasks here)."
            )
        return Prepared(argv=[*container.command, *container.args])

    @asynccontextmanager
    async def spawn(
        self, prepared: Prepared, env: dict[str, str], working_dir: Path | str, log: IO[bytes]
    ) -> AsyncIterator[asyncio.subprocess.Process]:
        """Start the command in its own process group in `working_dir`."""
        try:
            process = await asyncio.create_subprocess_exec(
                *prepared.argv,
                env=env,
                cwd=working_dir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        except OSError as exc:
            raise TaskSetupError(
                f"The container's command {prepared.argv[0]!r} could not start: {exc}"
            ) from exc
        yield process


async def _buildah(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        "buildah",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


class ImageRunner:
    """Tasks inside the job's image, pulled from its registry with buildah."""

    async def prepare(self, container: run_v2.Container) -> Prepared:
        """Pull the image (TaskSetupError CONTAINER_MISSING if it cannot) and settle the
        command as Cloud Run does: `command` replaces the entrypoint, `args` the CMD."""
        image_id = await self.pull(container.image)
        # The whole inspection: buildah 1.28's --format has no `json` function.
        code, out, err = await _buildah("inspect", "--type", "image", image_id)
        if code != 0:
            raise TaskSetupError(f"Image '{container.image}' cannot be inspected: {err.strip()}")
        config = json.loads(out).get("OCIv1", {}).get("config") or {}
        entrypoint = list(container.command) or list(config.get("Entrypoint") or [])
        arguments = list(container.args)
        if not container.command and not arguments:
            arguments = list(config.get("Cmd") or [])
        argv = entrypoint + arguments
        if not argv:
            raise TaskSetupError(f"Image '{container.image}' has no command and the job sets none.")
        return Prepared(argv=argv, image_id=image_id)

    async def pull(self, image: str) -> str:
        """The image's id once pulled; TaskSetupError (CONTAINER_MISSING) when it is not found."""
        code, out, err = await _buildah("pull", "--quiet", "--tls-verify=false", image)
        if code != 0:
            raise TaskSetupError(
                f"Image '{image}' not found. ({err.strip().splitlines()[-1] if err.strip() else ''})",
                reason="CONTAINER_MISSING",
            )
        return out.strip().splitlines()[-1]

    @asynccontextmanager
    async def spawn(
        self, prepared: Prepared, env: dict[str, str], working_dir: Path | str, log: IO[bytes]
    ) -> AsyncIterator[asyncio.subprocess.Process]:
        """A working container of the image running the command; removed afterwards."""
        assert prepared.image_id is not None
        code, out, err = await _buildah("from", "--pull-never", prepared.image_id)
        if code != 0:
            raise TaskSetupError(f"A container of the image could not be made: {err.strip()}")
        container = out.strip().splitlines()[-1]
        options = ["--workingdir", str(working_dir)] if working_dir else []
        for name, value in env.items():
            options += ["--env", f"{name}={value}"]
        try:
            process = await asyncio.create_subprocess_exec(
                "buildah",
                "run",
                "--isolation",
                "chroot",
                *options,
                container,
                "--",
                *prepared.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
            yield process
        finally:
            await _buildah("rm", container)
