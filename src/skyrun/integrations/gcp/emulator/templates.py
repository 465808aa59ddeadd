"""What Google checks in a job's template and how jobs.run overrides change it."""

from __future__ import annotations

import re

from google.cloud import run_v2

from skyrun.integrations.gcp.emulator.state import ApiError

JOB_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_RETRIES_LIMIT = 10
MAX_TIMEOUT_SECONDS = 168 * 3600
MAX_ENV_VARS = 1000


def invalid(message: str) -> ApiError:
    """400 INVALID_ARGUMENT."""
    return ApiError(400, "INVALID_ARGUMENT", message)


def check_template(job: run_v2.Job) -> None:
    """400 for a job template Google would refuse."""
    template = job.template
    task = template.template
    if not task.containers:
        raise invalid("job.template.template.containers: at least one container is required.")
    for index, container in enumerate(task.containers):
        if not container.image:
            raise invalid(f"job.template.template.containers[{index}].image: must not be empty.")
        if len(container.env) > MAX_ENV_VARS:
            raise invalid(f"containers[{index}].env: at most {MAX_ENV_VARS} variables.")
    if "max_retries" in task and not 0 <= task.max_retries <= MAX_RETRIES_LIMIT:
        raise invalid(f"max_retries must be between 0 and {MAX_RETRIES_LIMIT}.")
    if template.task_count < 0 or template.parallelism < 0:
        raise invalid("task_count and parallelism must not be negative.")
    if task.timeout and not 0 < task.timeout.total_seconds() <= MAX_TIMEOUT_SECONDS:
        raise invalid("timeout must be more than 0s and at most 168h.")


def apply_overrides(
    template: run_v2.ExecutionTemplate, overrides: run_v2.RunJobRequest.Overrides
) -> None:
    """Apply jobs.run overrides: args (or clearArgs) and env per container, taskCount, timeout."""
    containers = template.template.containers
    for override in overrides.container_overrides:
        matching = [c for c in containers if c.name == override.name]
        if not override.name and len(containers) == 1:
            matching = [containers[0]]
        if not matching:
            raise invalid(f"overrides: no container named '{override.name}' in the job.")
        container = matching[0]
        if override.clear_args:
            container.args = []
        elif override.args:
            container.args = list(override.args)
        if override.env:
            replaced = {variable.name for variable in override.env}
            kept = [variable for variable in container.env if variable.name not in replaced]
            container.env = [*kept, *override.env]
    if overrides.task_count:
        template.task_count = overrides.task_count
    if overrides.timeout:
        template.template.timeout = overrides.timeout
