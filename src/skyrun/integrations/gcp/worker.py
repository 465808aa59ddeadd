"""The `cloud-run` worker type: each flow run is one execution of its own Cloud Run job.

submit creates the job with a `start_execution_token`, so the one create call
also starts exactly one execution: a retried create answers 409 and starts
nothing, and there is no separate `jobs.run` that a retry could repeat. The
infrastructure id is the execution's full name. watch polls the execution with
growing delays until it ends, then deletes the job (unless `keep_job`); kill
cancels the execution, waits for it to stop and deletes the job. The worker's
background duties (sweeping finished jobs left behind, re-attaching after a
restart) live in `sweep.py`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as google_errors
from google.cloud import run_v2

from skyrun.client.client import SkyrunClient
from skyrun.integrations.gcp.api import ApiCache, CloudRunApi, describe, is_transient
from skyrun.integrations.gcp.executions import (
    execution_outcome,
    job_start_failure,
    left_from_earlier_attempt,
)
from skyrun.integrations.gcp.jobs import LABEL_FLOW_RUN, build_job, job_id_for
from skyrun.integrations.gcp.sweep import Sweeper, running_executions
from skyrun.retries import Backoff
from skyrun.schemas.core import FlowRun
from skyrun.schemas.states import StateType
from skyrun.schemas.work_pools import WorkPool
from skyrun.workers.base import BaseWorker, InfrastructureError, InfrastructureResult

logger = logging.getLogger("skyrun.worker.cloud_run")

# The longest wait between two polls of a running execution.
POLL_MAX_SECONDS = 10.0
# After a cancel, how long beyond the kill grace to wait for the execution to stop.
CANCEL_WAIT_SECONDS = 60.0
# Tries at replacing a finished job left from an earlier attempt of a run.
REPLACE_ATTEMPTS = 8


@dataclass
class Submitted:
    """A job this worker started and watches."""

    api: CloudRunApi
    job_name: str
    flow_run_id: uuid.UUID
    keep_job: bool
    start_deadline: float  # time.monotonic() by which the execution must have started


class CloudRunWorker(BaseWorker):
    """Runs each flow run as a Cloud Run job execution (Admin API v2, REST)."""

    type = "cloud-run"
    # Executions outlive their worker and report their own final states.
    kill_on_shutdown = False

    def __init__(self, client: SkyrunClient) -> None:
        super().__init__(client)
        self.start_timeout = client.settings.cloud_run_start_timeout
        self.apis = ApiCache()
        self.sweeper: Sweeper | None = None  # once started for a pool
        self._lock = threading.Lock()
        self._submitted: dict[str, Submitted] = {}
        self._pool_ids: dict[str, uuid.UUID] = {}
        self._warned_pools: set[str] = set()
        # Executions found running at start, until the loop watches them again.
        self._found: dict[str, Submitted] = {}

    # -- clients -------------------------------------------------------------
    def pool_id(self, pool_name: str | None) -> uuid.UUID | None:
        """The pool's id (for job labels), read once per pool."""
        if pool_name is None:
            return None
        with self._lock:
            if pool_name in self._pool_ids:
                return self._pool_ids[pool_name]
        pool_id = self.client.read_work_pool(pool_name).id
        with self._lock:
            self._pool_ids[pool_name] = pool_id
        return pool_id

    def _warn_plain_key(
        self, pool_name: str | None, env: dict[str, str], config: dict[str, Any]
    ) -> None:
        if "SKYRUN_API_KEY" not in env or config.get("api_key_secret"):
            return
        with self._lock:
            if (pool_name or "") in self._warned_pools:
                return
            self._warned_pools.add(pool_name or "")
        logger.warning(
            "Work pool %r: SKYRUN_API_KEY is written in plain text into each Cloud Run job; "
            "store it in Secret Manager and set the api_key_secret job variable",
            pool_name,
        )

    # -- the infrastructure interface ----------------------------------------
    def submit(
        self, flow_run: FlowRun, job_configuration: dict[str, Any], env: dict[str, str]
    ) -> str:
        api, project = self.apis.get(job_configuration)
        region = str(job_configuration.get("region") or "us-central1")
        parent = f"projects/{project}/locations/{region}"
        job_id = job_id_for(flow_run.name, flow_run.id)
        job_name = f"{parent}/jobs/{job_id}"
        job = build_job(
            job_configuration,
            env,
            flow_run_id=flow_run.id,
            deployment_id=flow_run.deployment_id,
            work_pool_id=self.pool_id(flow_run.work_pool_name),
        )
        self._warn_plain_key(flow_run.work_pool_name, env, job_configuration)
        submitted = Submitted(
            api=api,
            job_name=job_name,
            flow_run_id=flow_run.id,
            keep_job=bool(job_configuration.get("keep_job")),
            start_deadline=time.monotonic() + self.start_timeout,
        )
        try:
            self._create(api, parent, job_id, job, flow_run)
        except google_errors.NotFound as exc:
            raise InfrastructureError(
                f"Cloud Run has no {parent} ({describe(exc)}); check the region "
                f"({region!r}) and the project ({project!r})"
            ) from exc
        except (google_errors.Unauthorized, google_errors.Forbidden) as exc:
            raise InfrastructureError(
                f"Cloud Run refused job {job_id!r}: {describe(exc)}; check the pool's credentials "
                "(a gcp-credentials block) and that its service account may create Cloud Run "
                "jobs (roles/run.developer) in the project"
            ) from exc
        except google_errors.GoogleAPICallError as exc:
            raise InfrastructureError(f"Cloud Run refused job {job_id!r}: {describe(exc)}") from exc
        if self.sweeper is not None:
            self.sweeper.add_location(parent, api)
        execution_name = self._started_execution(submitted)
        with self._lock:
            self._submitted[execution_name] = submitted
        return execution_name

    def _create(
        self, api: CloudRunApi, parent: str, job_id: str, job: run_v2.Job, flow_run: FlowRun
    ) -> None:
        """Create the run's job (starting its one execution), or find it already made.

        A 409 means a retried create whose first reply was lost, or a run claimed
        again: the job exists and its execution is the run's, unless it finished
        before this claim (an earlier attempt's job that was kept): that one is
        replaced.
        """
        job_name = f"{parent}/jobs/{job_id}"
        state = flow_run.state
        claimed_at = (
            state.timestamp if state is not None and state.type == StateType.PENDING else None
        )
        for attempt in range(REPLACE_ATTEMPTS):
            try:
                api.create_job(parent, job_id, job)
                return
            except google_errors.Conflict:
                existing = api.get_job(job_name)
            if existing.labels.get(LABEL_FLOW_RUN) != str(flow_run.id):
                raise InfrastructureError(
                    f"a Cloud Run job named {job_id!r} already exists for another flow run"
                )
            if not left_from_earlier_attempt(existing, claimed_at):
                return
            if attempt == 0:
                logger.info("Replacing %s, left from an earlier attempt of the run", job_name)
            api.delete_job(job_name)
            time.sleep(min(0.2 * 2**attempt, POLL_MAX_SECONDS))  # the delete may take a moment
        raise InfrastructureError(
            f"the Cloud Run job {job_name} left from earlier cannot be replaced"
        )

    def _started_execution(self, submitted: Submitted) -> str:
        """Wait for the job's one execution to exist; fail fast if the job cannot start it."""
        api = submitted.api
        backoff = Backoff(initial=0.2, maximum=POLL_MAX_SECONDS)
        while True:
            try:
                job = api.get_job(submitted.job_name)
            except google_errors.GoogleAPICallError as exc:
                self._delete_job(submitted)
                raise InfrastructureError(
                    f"cannot read the Cloud Run job back: {describe(exc)}"
                ) from exc
            failure = job_start_failure(job)
            if failure is not None:
                self._delete_job(submitted)
                raise InfrastructureError(f"the Cloud Run job could not start: {failure}")
            name = job.latest_created_execution.name
            if name:
                return str(name)
            if time.monotonic() > submitted.start_deadline:
                self._delete_job(submitted)
                raise InfrastructureError(
                    f"the Cloud Run job started no execution within {self.start_timeout:g}s"
                )
            time.sleep(backoff.failed())

    def _get(self, infrastructure_id: str) -> Submitted:
        with self._lock:
            if infrastructure_id in self._found:
                self._submitted[infrastructure_id] = self._found.pop(infrastructure_id)
            submitted = self._submitted.get(infrastructure_id)
        if submitted is None:
            raise InfrastructureError(f"{infrastructure_id} was not started by this worker")
        return submitted

    def watch(self, infrastructure_id: str) -> InfrastructureResult:
        submitted = self._get(infrastructure_id)
        try:
            return self._watch(submitted, infrastructure_id)
        finally:
            self._delete_job(submitted)
            with self._lock:
                self._submitted.pop(infrastructure_id, None)

    def _watch(self, submitted: Submitted, execution_name: str) -> InfrastructureResult:
        backoff = Backoff(initial=0.5, maximum=POLL_MAX_SECONDS)
        while True:
            try:
                execution = submitted.api.get_execution(execution_name)
            except google_errors.NotFound:
                return InfrastructureResult(None, "the Cloud Run execution was deleted")
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # Retried for minutes already: Cloud Run is unreachable, not the run
                # gone. Keep watching; the flow reports its own state meanwhile.
                logger.warning("Watching %s: %s; still trying", execution_name, exc)
                time.sleep(POLL_MAX_SECONDS)
                continue
            outcome = execution_outcome(execution)
            if outcome is None and execution.start_time is None:
                outcome = self._start_failure(submitted)
            if outcome is not None:
                if execution.completion_time is None:
                    submitted.api.cancel_execution(execution_name)  # it will never run
                return outcome
            time.sleep(backoff.failed())

    def _start_failure(self, submitted: Submitted) -> InfrastructureResult | None:
        """Why a job's execution will never start, if it will not: the job's own condition
        (its image is missing) or the start deadline passed."""
        try:
            failure = job_start_failure(submitted.api.get_job(submitted.job_name))
        except google_errors.NotFound:
            failure = "the Cloud Run job was deleted"
        except Exception as exc:
            if not is_transient(exc):
                raise
            failure = None  # asked again at the next poll
        if failure is not None:
            return InfrastructureResult(1, failure)
        if time.monotonic() > submitted.start_deadline:
            return InfrastructureResult(
                1, f"the container did not start within {self.start_timeout:g}s"
            )
        return None

    def kill(self, infrastructure_id: str, grace_seconds: float) -> None:
        submitted = self._get(infrastructure_id)
        submitted.api.cancel_execution(infrastructure_id)
        deadline = time.monotonic() + grace_seconds + CANCEL_WAIT_SECONDS
        backoff = Backoff(initial=0.2, maximum=2.0)
        while time.monotonic() < deadline:
            try:
                execution = submitted.api.get_execution(infrastructure_id)
            except google_errors.NotFound:
                break
            if execution.completion_time is not None:
                break
            time.sleep(backoff.failed())
        else:
            logger.warning("%s did not stop after its cancel; deleting its job", infrastructure_id)
        # Deleting the job also stops whatever of it still runs.
        self._delete_job(submitted)

    def _delete_job(self, submitted: Submitted) -> None:
        if submitted.keep_job:
            return
        try:
            if submitted.api.delete_job(submitted.job_name):
                logger.info("Deleted Cloud Run job %s", submitted.job_name)
        except Exception as exc:
            # The sweep deletes it later; the run's outcome does not depend on it.
            logger.warning("Could not delete Cloud Run job %s: %s", submitted.job_name, exc)

    # -- background duties -----------------------------------------------------
    def start(
        self, pool: WorkPool, job_configuration: dict[str, Any] | None
    ) -> dict[uuid.UUID, str]:
        """Start the sweep; return the executions of the pool's runs still running.

        Both use the pool's default region and credentials (the sweep also visits
        every region this worker submits to).
        """
        with self._lock:
            self._pool_ids[pool.name] = pool.id
        self.sweeper = Sweeper(
            pool.id, self._watched_jobs, self.client.settings.cloud_run_sweep_interval
        )
        if job_configuration is None:
            logger.warning("Work pool %r: its defaults do not render; no sweep", pool.name)
            return {}
        try:
            api, project = self.apis.get(job_configuration)
        except InfrastructureError as exc:
            logger.warning("Work pool %r: no sweep of finished jobs: %s", pool.name, exc)
            return {}
        region = str(job_configuration.get("region") or "us-central1")
        parent = f"projects/{project}/locations/{region}"
        self.sweeper.add_location(parent, api)
        try:
            running = running_executions(api, parent, pool.id)
        except Exception as exc:
            logger.warning("Listing the Cloud Run jobs of %s failed: %s", parent, exc)
            running = {}
        deadline = time.monotonic() + self.start_timeout
        found: dict[uuid.UUID, str] = {}
        with self._lock:
            for flow_run_id, (job_name, execution, keep_job) in running.items():
                self._found[execution] = Submitted(api, job_name, flow_run_id, keep_job, deadline)
                found[flow_run_id] = execution
        self.sweeper.start()
        return found

    def _watched_jobs(self) -> set[str]:
        with self._lock:
            return {submitted.job_name for submitted in self._submitted.values()}

    def close(self) -> None:
        # Only the background duties stop: watches go on until the process exits, so
        # a stopping worker never reports a run it leaves running as ended.
        if self.sweeper is not None:
            self.sweeper.stop()
