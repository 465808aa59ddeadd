"""The worker-type plugin interface: what each kind of infrastructure implements.

A worker type (process, cloud-run, ...) subclasses `BaseWorker` and implements
`submit`, `watch` and `kill`; the base loop (`skyrun.workers.loop`) does the rest:
claiming, rendering the job, crash reporting, cancellation, limits and health.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from skyrun.client.client import SkyrunClient
from skyrun.jobs.exit_codes import ABORTED_EXIT_CODE
from skyrun.jobs.types import EMPTY_TEMPLATE, default_job_template
from skyrun.schemas.core import FlowRun
from skyrun.schemas.work_pools import WorkPool

__all__ = ["ABORTED_EXIT_CODE", "BaseWorker", "InfrastructureError", "InfrastructureResult"]


@dataclass(frozen=True)
class InfrastructureResult:
    """How a run's infrastructure ended.

    Attributes:
        exit_code: The process's (or container's) exit code; None when unknown.
        reason: A human explanation when the infrastructure reports one
            (e.g. "killed by signal 9", a Cloud Run condition).
    """

    exit_code: int | None
    reason: str | None = None

    def describe(self) -> str:
        code = "an unknown code" if self.exit_code is None else f"code {self.exit_code}"
        return f"{code} ({self.reason})" if self.reason else code


class InfrastructureError(Exception):
    """The infrastructure could not be started, watched or stopped; the message says why."""


class BaseWorker(ABC):
    """A worker type: launches, watches and kills the infrastructure of flow runs.

    Subclasses set `type` (the name `skyrun worker start -t TYPE` uses) and
    implement the three infrastructure methods. They must be safe to call from
    several threads at once: the base loop handles each run in its own thread.
    """

    type: ClassVar[str]
    # Kill running infrastructure when the worker stops. True for local processes
    # (nobody else would watch them); False for remote jobs, which keep running
    # and report their own final state.
    kill_on_shutdown: ClassVar[bool] = False

    def __init__(self, client: SkyrunClient) -> None:
        self.client = client

    @classmethod
    def default_job_template(cls) -> dict[str, Any]:
        """The base job template a new pool of this type starts with."""
        return default_job_template(cls.type) or dict(EMPTY_TEMPLATE)

    @abstractmethod
    def submit(
        self, flow_run: FlowRun, job_configuration: dict[str, Any], env: dict[str, str]
    ) -> str:
        """Start the run's infrastructure; return its id (e.g. "pid:1234").

        Raises:
            InfrastructureError: If it could not be started (the run becomes CRASHED).
        """

    @abstractmethod
    def watch(self, infrastructure_id: str) -> InfrastructureResult:
        """Block until the infrastructure ends; return how it ended."""

    @abstractmethod
    def kill(self, infrastructure_id: str, grace_seconds: float) -> None:
        """Stop the infrastructure: politely, then by force after `grace_seconds`."""

    def start(
        self, pool: WorkPool, job_configuration: dict[str, Any] | None
    ) -> dict[uuid.UUID, str]:
        """Called once before the worker polls `pool`: start background duties.

        Args:
            pool: The pool this worker serves.
            job_configuration: What the pool's defaults render to (None if they
                do not render on their own), e.g. for its region and credentials.

        Returns:
            The infrastructure of the pool's runs still running (flow run id ->
            infrastructure id). The loop watches again those this worker holds,
            so a restarted worker re-attaches to its runs. None here by default.
        """
        return {}

    def close(self) -> None:
        """Release what the worker holds (clients, threads); called once at exit."""
        return None


def execute_command(flow_run_id: uuid.UUID | str) -> list[str]:
    """The command that runs a flow run on this machine: `skyrun flow-run execute <id>`.

    Uses the `skyrun` script next to this interpreter when there is one (a
    virtualenv's bin), so the child runs the same installation as the worker.
    Remote infrastructure (a container) runs plain `skyrun flow-run execute`:
    the run id is in its environment as SKYRUN_FLOW_RUN_ID.
    """
    script = os.path.join(os.path.dirname(sys.executable), "skyrun")
    if not os.access(script, os.X_OK):
        script = shutil.which("skyrun") or ""
    if script:
        return [script, "flow-run", "execute", str(flow_run_id)]
    return [sys.executable, "-m", "skyrun.cli.main", "flow-run", "execute", str(flow_run_id)]
