"""One claimed run, start to end: render its job, launch it, watch it, report how it ended.

Every path ends with the run in a final state or handed back: a job that does
not render is FAILED (nothing launched), infrastructure that does not start or
exits without the run reporting a final state is CRASHED, a run cancelled
while it ran is CANCELLED.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from skyrun.client.client import SkyrunClient
from skyrun.client.errors import SkyrunAPIError
from skyrun.jobs.exit_codes import ABORTED_EXIT_CODE
from skyrun.jobs.templates import JobTemplateError, prepare_job
from skyrun.schemas.core import FlowRun
from skyrun.schemas.deployments import Deployment
from skyrun.schemas.orchestration import Decision
from skyrun.schemas.states import TERMINAL_TYPES, StateCreate, StateType
from skyrun.schemas.work_pools import ClaimedRun
from skyrun.settings import Settings
from skyrun.workers.base import BaseWorker, InfrastructureResult
from skyrun.workers.slots import RunTracker

logger = logging.getLogger("skyrun.worker")

# Seconds between the polite stop (e.g. SIGTERM) and the forced one (SIGKILL).
KILL_GRACE_SECONDS = 10.0


def skyrun_environment(settings: Settings, flow_run_id: uuid.UUID) -> dict[str, str]:
    """What a flow run's process needs to report to the same API as the worker."""
    env = {"SKYRUN_FLOW_RUN_ID": str(flow_run_id)}
    if settings.api_url:
        env["SKYRUN_API_URL"] = settings.api_url
    else:
        # Embedded mode: the child opens the same database as the worker.
        env["SKYRUN_HOME"] = str(settings.home)
        if settings.database_url:
            env["SKYRUN_DATABASE_URL"] = settings.database_url
    if settings.api_key:
        env["SKYRUN_API_KEY"] = settings.api_key
    return env


def job_environment(
    job_configuration: Mapping[str, Any], settings: Settings, flow_run_id: uuid.UUID
) -> dict[str, str]:
    """The skyrun variables, then the rendered job's `env` over them (None values dropped).

    The job's env wins so a job can reach the API by another address than the
    worker (e.g. a public URL from Cloud Run); the run id always comes from the worker.
    """
    rendered = job_configuration.get("env") or {}
    env = skyrun_environment(settings, flow_run_id)
    env.update({str(k): str(v) for k, v in rendered.items() if v is not None})
    env["SKYRUN_FLOW_RUN_ID"] = str(flow_run_id)
    return env


def is_later_attempt(launched: FlowRun, current: FlowRun) -> bool:
    """Whether `current` is a later attempt of the run than the one claimed as `launched`.

    A finished run retried (forced back to SCHEDULED) can be claimed again, even by
    the same worker, before the first attempt's infrastructure is seen to exit; that
    exit must not crash the new attempt. A new claim is a new PENDING state; a new
    attempt that started counts one more RUNNING than this attempt could.
    """
    if launched.state is None or current.state is None:
        return False
    if current.state.type == StateType.PENDING and current.state.id != launched.state.id:
        return True
    return current.run_count > launched.run_count + 1


class RunLauncher:
    """Takes claimed runs through render -> submit -> watch -> report."""

    def __init__(
        self,
        client: SkyrunClient,
        worker: BaseWorker,
        tracker: RunTracker,
        settings: Settings,
        stopping: threading.Event,
    ) -> None:
        self.client = client
        self.worker = worker
        self.tracker = tracker
        self.settings = settings
        self.stopping = stopping

    # -- the steps -----------------------------------------------------------
    def handle(self, claimed: ClaimedRun, flow_run: FlowRun) -> None:
        """Run one claimed run to its end (called in the run's own thread)."""
        if self.stopping.is_set():
            self._hand_back(flow_run.id)
            return
        try:
            job_configuration = self.render(claimed, flow_run)
        except JobTemplateError as exc:
            logger.error("Flow run %s: the job does not render: %s", flow_run.id, exc)
            self.propose(flow_run.id, StateType.FAILED, f"invalid job configuration: {exc}")
            return
        except SkyrunAPIError as exc:
            # A block the template uses could not be read (e.g. the worker's API key lacks
            # the `secrets` scope): the server's answer says what to fix.
            logger.error("Flow run %s: the job does not render: %s", flow_run.id, exc.detail)
            self.propose(flow_run.id, StateType.FAILED, f"cannot render the job: {exc.detail}")
            return
        env = job_environment(job_configuration, self.settings, flow_run.id)
        if self.tracker.cancel_requested(flow_run.id) or self.stopping.is_set():
            self._hand_back(flow_run.id)
            return
        try:
            infrastructure_id = self.worker.submit(flow_run, job_configuration, env)
        except Exception as exc:
            logger.error("Flow run %s: the infrastructure did not start: %s", flow_run.id, exc)
            self.propose(flow_run.id, StateType.CRASHED, f"infrastructure failed to start: {exc}")
            return
        logger.info("Flow run %s: started %s", flow_run.id, infrastructure_id)
        if not self.tracker.started(flow_run.id, infrastructure_id):
            # Cancelled between claim and submit: the cancel watcher found nothing to kill.
            self.worker.kill(infrastructure_id, KILL_GRACE_SECONDS)
        self._record_infrastructure(flow_run.id, infrastructure_id)
        result = self.worker.watch(infrastructure_id)
        logger.info("Flow run %s: infrastructure exited with %s", flow_run.id, result.describe())
        self.report_exit(flow_run.id, result, claimed.worker_id, launched=flow_run)

    def render(self, claimed: ClaimedRun, flow_run: FlowRun) -> dict[str, Any]:
        deployment = Deployment.model_validate(claimed.deployment) if claimed.deployment else None
        return self.prepare(
            claimed.base_job_template,
            deployment.job_variables if deployment else None,
            flow_run.job_variables,
        )

    def prepare(
        self,
        base_job_template: dict[str, Any],
        deployment_job_variables: dict[str, Any] | None = None,
        run_job_variables: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Render a job configuration as the worker does for a run (pool defaults alone
        when no job variables are given)."""
        return prepare_job(
            base_job_template,
            deployment_job_variables,
            run_job_variables,
            env=os.environ,
            skyrun_variables=self.client.variable_value,
            blocks=self.client.block_value,
        )

    def resume(self, flow_run_id: uuid.UUID, infrastructure_id: str, worker_id: uuid.UUID) -> None:
        """Watch a run's infrastructure found running when the worker started, and report."""
        result = self.worker.watch(infrastructure_id)
        logger.info("Flow run %s: infrastructure exited with %s", flow_run_id, result.describe())
        self.report_exit(flow_run_id, result, worker_id)

    def _record_infrastructure(self, flow_run_id: uuid.UUID, infrastructure_id: str) -> None:
        try:
            self.client.set_infrastructure_id(flow_run_id, infrastructure_id)
        except Exception as exc:
            # Only informative: the worker keeps the id itself for cancellation.
            logger.warning("Flow run %s: could not record its infrastructure: %s", flow_run_id, exc)

    def report_exit(
        self,
        flow_run_id: uuid.UUID,
        result: InfrastructureResult,
        worker_id: uuid.UUID,
        launched: FlowRun | None = None,
    ) -> None:
        """After the infrastructure ended: make sure the run is in a final state.

        `launched` is the run as claimed for this infrastructure: if the run has moved
        on to a later attempt since (retried after it ended, and claimed again), that
        attempt is not this infrastructure's to report on.
        """
        # Patient: if the server is restarting, the run's own final state may be
        # waiting to be sent too, and nothing else would report this one.
        run = self.client.read_flow_run(flow_run_id, retry_for=self.settings.final_state_timeout)
        state = run.state
        if state is not None and state.type in TERMINAL_TYPES:
            return
        if (state is not None and state.type == StateType.CANCELLING) or (
            self.tracker.cancel_requested(flow_run_id)
        ):
            self.propose(flow_run_id, StateType.CANCELLED, "cancelled; its infrastructure stopped")
            return
        if (
            (state is not None and state.type == StateType.SCHEDULED)
            or (run.worker_id is not None and run.worker_id != worker_id)
            or result.exit_code == ABORTED_EXIT_CODE
            or (launched is not None and is_later_attempt(launched, run))
        ):
            # The claim was lost (the server rescheduled the run, or another worker has it):
            # the run is no longer this worker's to report on.
            logger.warning(
                "Flow run %s: this worker's claim was lost; leaving it to its new owner",
                flow_run_id,
            )
            return
        message = f"infrastructure exited with {result.describe()} without reporting a final state"
        if self.stopping.is_set():
            message = f"the worker stopped while the run was in progress; {message}"
        self.propose(flow_run_id, StateType.CRASHED, message)

    def _hand_back(self, flow_run_id: uuid.UUID) -> None:
        """A claimed run that will not be launched: cancelled, or the worker is stopping."""
        if self.tracker.cancel_requested(flow_run_id):
            self.propose(flow_run_id, StateType.CANCELLED, "cancelled before it started")
            return
        self.propose(
            flow_run_id,
            StateType.SCHEDULED,
            "its worker stopped before starting it; rescheduled",
        )

    # -- state changes -------------------------------------------------------
    def propose(self, flow_run_id: uuid.UUID, state_type: StateType, message: str) -> bool:
        """Propose a state; returns whether the server accepted it (errors are logged).

        A final state (CRASHED, CANCELLED, FAILED) is retried while the server does
        not answer, for up to SKYRUN_FINAL_STATE_TIMEOUT: nobody else would report it.
        """
        final = state_type in TERMINAL_TYPES
        try:
            response = self.client.set_flow_run_state(
                flow_run_id,
                StateCreate(type=state_type, message=message),
                retry_for=self.settings.final_state_timeout if final else None,
            )
        except Exception as exc:
            logger.error("Flow run %s: could not set %s: %s", flow_run_id, state_type.value, exc)
            return False
        accepted = response.decision == Decision.ACCEPT
        if not accepted:
            logger.info(
                "Flow run %s: %s not accepted: %s", flow_run_id, state_type.value, response.reason
            )
        return accepted
