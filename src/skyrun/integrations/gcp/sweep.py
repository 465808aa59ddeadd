"""Finding a pool's Cloud Run jobs by their labels: those left behind, and those still running.

Cloud Run allows 1,000 jobs per region: a job a worker could not delete (it
stopped, the delete failed) must not stay forever. `sweep_finished_jobs` deletes
the pool's finished skyrun jobs, a bounded number per pass so one pass never
takes long; `running_executions` lists the executions still running, so a
restarted worker can watch them again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

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


def pool_jobs(api: CloudRunApi, parent: str, pool_id: uuid.UUID) -> Iterator[run_v2.Job]:
    """The skyrun jobs of one pool in one region (at most MAX_PAGES pages are read)."""
    for job in api.list_jobs(parent, PAGE_SIZE, MAX_PAGES):
        labels = job.labels
        if labels.get(LABEL_MANAGED_BY) == MANAGED_BY and labels.get(LABEL_WORK_POOL) == str(
            pool_id
        ):
            yield job


def is_finished(job: run_v2.Job) -> bool:
    """Whether a job has nothing left to run: its execution completed, or it never started one."""
    latest = job.latest_created_execution
    if latest.name:
        return latest.completion_time is not None
    return job_start_failure(job) is not None


def sweep_finished_jobs(
    api: CloudRunApi, parent: str, pool_id: uuid.UUID, watched: set[str]
) -> int:
    """Delete the pool's finished jobs that nobody watches (and not kept); how many were deleted."""
    deleted = 0
    for job in pool_jobs(api, parent, pool_id):
        if deleted >= MAX_DELETES:
            break
        if job.name in watched or job.labels.get(LABEL_KEEP) == "true" or not is_finished(job):
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
        if not execution or is_finished(job):
            continue
        try:
            flow_run_id = uuid.UUID(job.labels.get(LABEL_FLOW_RUN, ""))
        except ValueError:
            continue
        found[flow_run_id] = (job.name, execution, job.labels.get(LABEL_KEEP) == "true")
    return found
