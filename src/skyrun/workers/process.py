"""The `process` worker type: each flow run is a local subprocess.

The process starts in a new session, so `kill` stops its whole process group
(the flow and anything it started). Its output goes to the worker's stdout and
to the run's logs when the job's `stream_output` is true.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from skyrun.client.client import SkyrunClient
from skyrun.schemas.core import FlowRun
from skyrun.workers.base import (
    BaseWorker,
    InfrastructureError,
    InfrastructureResult,
    execute_command,
)
from skyrun.workers.output import OutputForwarder

# How long to wait for the output pipe after the process exits (a grandchild may hold it).
OUTPUT_DRAIN_SECONDS = 5.0


@dataclass
class _Launched:
    process: subprocess.Popen[bytes]
    forwarder: OutputForwarder | None
    temporary_dir: str | None


def command_of(job_configuration: dict[str, Any], flow_run: FlowRun) -> list[str]:
    """The rendered `command` (a string is split like a shell would), or the default."""
    command = job_configuration.get("command")
    if command is None or command == "" or command == []:
        return execute_command(flow_run.id)
    if isinstance(command, str):
        try:
            return shlex.split(command)
        except ValueError as exc:
            raise InfrastructureError(f"cannot parse the command {command!r}: {exc}") from exc
    if isinstance(command, list):
        return [str(part) for part in command]
    raise InfrastructureError(f"command must be a string or a list, got {command!r}")


class ProcessWorker(BaseWorker):
    """Runs each flow run as a subprocess of the worker."""

    type = "process"
    kill_on_shutdown = True

    def __init__(self, client: SkyrunClient) -> None:
        super().__init__(client)
        self._launched: dict[str, _Launched] = {}
        self._lock = threading.Lock()

    def submit(
        self, flow_run: FlowRun, job_configuration: dict[str, Any], env: dict[str, str]
    ) -> str:
        command = command_of(job_configuration, flow_run)
        working_dir = job_configuration.get("working_dir")
        temporary_dir = None
        if working_dir:
            if not os.path.isdir(working_dir):
                raise InfrastructureError(f"working directory {working_dir!r} does not exist")
        else:
            working_dir = temporary_dir = tempfile.mkdtemp(prefix="skyrun-run-")
        stream_output = bool(job_configuration.get("stream_output", True))
        output = subprocess.PIPE if stream_output else subprocess.DEVNULL
        try:
            process = subprocess.Popen(
                command,
                cwd=working_dir,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT if stream_output else subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            if temporary_dir:
                shutil.rmtree(temporary_dir, ignore_errors=True)
            raise InfrastructureError(f"cannot run {command[0]!r}: {exc}") from exc
        forwarder = None
        if stream_output and process.stdout is not None:
            forwarder = OutputForwarder(self.client, flow_run.id, process.stdout)
            forwarder.start()
        infrastructure_id = f"pid:{process.pid}"
        with self._lock:
            self._launched[infrastructure_id] = _Launched(process, forwarder, temporary_dir)
        return infrastructure_id

    def _get(self, infrastructure_id: str) -> _Launched:
        with self._lock:
            launched = self._launched.get(infrastructure_id)
        if launched is None:
            raise InfrastructureError(f"{infrastructure_id} was not started by this worker")
        return launched

    def watch(self, infrastructure_id: str) -> InfrastructureResult:
        launched = self._get(infrastructure_id)
        code = launched.process.wait()
        if launched.forwarder is not None:
            launched.forwarder.join(OUTPUT_DRAIN_SECONDS)
        if launched.process.stdout is not None:
            launched.process.stdout.close()
        if launched.temporary_dir:
            shutil.rmtree(launched.temporary_dir, ignore_errors=True)
        with self._lock:
            self._launched.pop(infrastructure_id, None)
        reason = None
        if code < 0:
            reason = f"killed by signal {signal.Signals(-code).name}"
        return InfrastructureResult(exit_code=code, reason=reason)

    def kill(self, infrastructure_id: str, grace_seconds: float) -> None:
        process = self._get(infrastructure_id).process
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            pass
        # Whatever else the flow started in its session goes too.
        _signal_group(process, signal.SIGKILL)

    def close(self) -> None:
        with self._lock:
            launched = list(self._launched.values())
        for item in launched:
            _signal_group(item.process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        # The process leads its own session, so its group id is its pid.
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
