"""Finding a pool's Cloud Run jobs by their labels: those left behind, and those still running.

Cloud Run allows 1,000 jobs per region: a job a worker could not delete (it
stopped, the delete failed) must not stay forever. `sweep_finished_jobs` deletes
the pool's finished skyrun jobs, a bounded number per pass so one pass never
takes long; `running_executions` lists the executions still running, so a
restarted worker can watch them again.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from google.cloud import run_v2

from skyrun.integrations.gcp.api import CloudRunApi
from skyrun.integrations.gcp.executions import job_start_failure
from skyrun.integrations.gcp.jobs import (
    LABEL_FLOW_RUN,
    LABEL_KEEP,
    LABEL_MANAGED_BY,
    LABEL_WORK_POOL,
    MANAGED_BY,
)

logger = logging.getLogger("skyrun.worker.cloud_run")

PAGE_SIZE = 100
# At most this many pages read, and jobs deleted, per sweep pass.
MAX_PAGES = 10
MAX_DELETES = 50
# A job is swept only this long after it finished: the worker watching it (maybe
# another one) reads its outcome and deletes it itself well before.
MIN_AGE_SECONDS = 300.0


def pool_jobs(api: CloudRunApi, parent: str, pool_id: uuid.UUID) -> Iterator[run_v2.Job]:
    """The skyrun jobs of one pool in one region (at most MAX_PAGES pages are read)."""
    for job in api.list_jobs(parent, PAGE_SIZE, MAX_PAGES):
        labels = job.labels
        if labels.get(LABEL_MANAGED_BY) == MANAGED_BY and labels.get(LABEL_WORK_POOL) == str(
            pool_id
        ):
            yield job


def finished_at(job: run_v2.Job) -> datetime | None:
    """When a job stopped having anything to run: its execution completed, or it never
    started one; None while it may still run."""
    latest = job.latest_created_execution
    if latest.name:
        return latest.completion_time
    if job_start_failure(job) is not None:
        return job.terminal_condition.last_transition_time or job.update_time
    return None


def sweep_finished_jobs(
    api: CloudRunApi,
    parent: str,
    pool_id: uuid.UUID,
    watched: set[str],
    min_age_seconds: float = MIN_AGE_SECONDS,
) -> int:
    """Delete the pool's jobs finished for `min_age_seconds` that nobody here watches and
    that are not kept; how many were deleted."""
    cutoff = datetime.now(UTC) - timedelta(seconds=min_age_seconds)
    deleted = 0
    for job in pool_jobs(api, parent, pool_id):
        if deleted >= MAX_DELETES:
            break
        if job.name in watched or job.labels.get(LABEL_KEEP) == "true":
            continue
        finished = finished_at(job)
        if finished is None or finished > cutoff:
            continue
        if api.delete_job(job.name):
            deleted += 1
            logger.info("Swept finished Cloud Run job %s", job.name)
    return deleted


def running_executions(
    api: CloudRunApi, parent: str, pool_id: uuid.UUID
) -> dict[uuid.UUID, tuple[str, str, bool]]:
    """flow run id -> (job name, execution name, keep_job) of the pool's unfinished jobs."""
    found: dict[uuid.UUID, tuple[str, str, bool]] = {}
    for job in pool_jobs(api, parent, pool_id):
        execution = job.latest_created_execution.name
        if not execution or finished_at(job) is not None:
            continue
        try:
            flow_run_id = uuid.UUID(job.labels.get(LABEL_FLOW_RUN, ""))
        except ValueError:
            continue
        found[flow_run_id] = (job.name, execution, job.labels.get(LABEL_KEEP) == "true")
    return found


class Sweeper:
    """Sweeps one pool's finished jobs in every region this worker has used, now and then.

    Args:
        pool_id: The pool whose jobs (by label) are swept.
        watched: The job names this worker watches now (never swept).
        interval: Seconds between passes.
    """

    def __init__(
        self, pool_id: uuid.UUID, watched: Callable[[], set[str]], interval: float
    ) -> None:
        self.pool_id = pool_id
        self.watched = watched
        self.interval = interval
        self.min_age_seconds = MIN_AGE_SECONDS
        self.stopping = threading.Event()
        self._locations: dict[str, CloudRunApi] = {}
        self._lock = threading.Lock()

    def add_location(self, parent: str, api: CloudRunApi) -> None:
        """Sweep `parent` (projects/P/locations/R) too, through `api`."""
        with self._lock:
            self._locations.setdefault(parent, api)

    def sweep(self) -> int:
        """One pass over every location; how many jobs were deleted."""
        with self._lock:
            locations = list(self._locations.items())
        watched = self.watched()
        deleted = 0
        for parent, api in locations:
            try:
                deleted += sweep_finished_jobs(
                    api, parent, self.pool_id, watched, self.min_age_seconds
                )
            except Exception as exc:
                logger.warning("Sweeping the Cloud Run jobs of %s failed: %s", parent, exc)
        return deleted

    def start(self) -> None:
        """Sweep now and then every `interval` seconds, in a thread, until `stop()`."""
        threading.Thread(target=self._loop, name="skyrun-cloud-run-sweep", daemon=True).start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.sweep()
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
