"""What each Cloud Run Admin API v2 call does to the emulator's jobs and executions.

Routes (app.py) parse paths and bodies; this module checks what Google checks
(job ids, the template, the per-region job limit, override container names) and
changes the store. Output-only fields are set here as Google sets them.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from google.api import launch_stage_pb2
from google.cloud import run_v2

from skyrun.integrations.gcp.emulator.conditions import condition, set_condition
from skyrun.integrations.gcp.emulator.config import EmulatorConfig
from skyrun.integrations.gcp.emulator.executor import Executor
from skyrun.integrations.gcp.emulator.faults import FaultBook
from skyrun.integrations.gcp.emulator.runners import ImageRunner, TaskSetupError
from skyrun.integrations.gcp.emulator.state import (
    ApiError,
    Operation,
    Store,
    message_json,
    new_etag,
    not_found,
)
from skyrun.integrations.gcp.emulator.state import now as _now
from skyrun.integrations.gcp.emulator.templates import (
    JOB_ID,
    apply_overrides,
    check_template,
    invalid,
)

Ready = run_v2.Condition.State
LaunchStage = launch_stage_pb2.LaunchStage


class Service:
    """The API's operations on one store.

    Args:
        config: the emulator's settings.
        store: its resources.
        executor: what runs executions.
        faults: injected faults (for executions that never start).
    """

    def __init__(
        self, config: EmulatorConfig, store: Store, executor: Executor, faults: FaultBook
    ) -> None:
        self.config = config
        self.store = store
        self.executor = executor
        self.faults = faults

    def parent(self, project: str, region: str) -> str:
        """`projects/P/locations/R`, or 404 for a region the emulator does not serve."""
        if self.config.regions is not None and region not in self.config.regions:
            raise ApiError(404, "NOT_FOUND", f"Location '{region}' was not found.")
        return f"projects/{project}/locations/{region}"

    def create_job(self, parent: str, job_id: str, job: run_v2.Job, validate_only: bool) -> Any:
        """jobs.create: the Operation JSON."""
        if not JOB_ID.match(job_id):
            raise invalid(
                f"jobId '{job_id}' is invalid: a job id is 1-63 lower-case letters, digits "
                "and hyphens, starting with a letter and not ending with a hyphen."
            )
        name = f"{parent}/jobs/{job_id}"
        if job.name and job.name != name:
            raise invalid(f"job.name '{job.name}' does not match the jobId '{job_id}'.")
        check_template(job)
        token = job.start_execution_token or job.run_execution_token
        if job.start_execution_token and job.run_execution_token:
            raise invalid("Set at most one of start_execution_token and run_execution_token.")
        if token and len(f"{job_id}-{token}") > 63:
            raise invalid("The job name and the execution token together exceed 63 characters.")
        if name in self.store.jobs:
            raise ApiError(409, "ALREADY_EXISTS", f"Resource '{job_id}' already exists.")
        if len(self.store.jobs_in(parent)) >= self.config.job_limit:
            raise ApiError(
                429,
                "RESOURCE_EXHAUSTED",
                f"Quota exceeded: at most {self.config.job_limit} jobs per project and region "
                f"({parent}). Delete jobs that are no longer needed.",
            )
        moment = _now()
        job.name = name
        job.uid = str(uuid.uuid4())
        job.generation = 1
        job.observed_generation = 1
        job.create_time = moment
        job.update_time = moment
        job.etag = new_etag()
        if not job.template.task_count:
            job.template.task_count = 1
        if not job.launch_stage:
            job.launch_stage = LaunchStage.GA
        checking_image = self.config.execute == "image"
        state = (
            Ready.CONDITION_RECONCILING if token or checking_image else Ready.CONDITION_SUCCEEDED
        )
        job.terminal_condition = run_v2.Condition(
            type_="Ready", state=state, last_transition_time=moment
        )
        job.reconciling = state != Ready.CONDITION_SUCCEEDED
        if validate_only:
            return {"name": f"{parent}/operations/validate", "done": True}
        self.store.jobs[name] = job
        operation = self.store.new_operation(parent, "Job", name)
        if checking_image:
            self.executor.background(self._check_image(job, operation, token))
        else:
            operation.finish()
        if token:
            self.new_execution(job, f"{job_id}-{token}", run_v2.RunJobRequest.Overrides())
        self.store.save()
        return self.store.render_operation(operation)

    async def _check_image(self, job: run_v2.Job, operation: Operation, token: str) -> None:
        runner = self.executor.runner
        assert isinstance(runner, ImageRunner)
        try:
            await runner.pull(job.template.template.containers[0].image)
        except TaskSetupError as exc:
            job.terminal_condition = run_v2.Condition(
                type_="Ready",
                state=Ready.CONDITION_FAILED,
                message=exc.message,
                reason=run_v2.Condition.CommonReason.CONTAINER_MISSING,
                last_transition_time=_now(),
            )
            job.reconciling = False
            operation.finish({"code": 9, "message": exc.message})
        else:
            if not token:
                job.terminal_condition.state = Ready.CONDITION_SUCCEEDED  # type: ignore[assignment]
                job.reconciling = False
            operation.finish()
        self.store.save()

    def update_job(
        self, name: str, job: run_v2.Job, allow_missing: bool, validate_only: bool
    ) -> Any:
        """jobs.patch: replace what the caller may set; the Operation JSON."""
        current = self.store.jobs.get(name)
        if current is None:
            if not allow_missing:
                raise not_found(name)
            parent, _, job_id = name.rpartition("/jobs/")
            job.name = ""
            return self.create_job(parent, job_id, job, validate_only)
        check_template(job)
        if validate_only:
            return {"name": f"{name.rpartition('/jobs/')[0]}/operations/validate", "done": True}
        for field in ("labels", "annotations", "client", "client_version", "launch_stage"):
            setattr(current, field, getattr(job, field))
        current.template = job.template
        if not current.template.task_count:
            current.template.task_count = 1
        current.generation += 1
        current.observed_generation = current.generation
        current.update_time = _now()
        current.etag = new_etag()
        operation = self.store.new_operation(name.rpartition("/jobs/")[0], "Job", name)
        operation.finish()
        self.store.save()
        return self.store.render_operation(operation)

    async def delete_job(self, name: str) -> Any:
        """jobs.delete: stop and forget its executions too; the Operation JSON (the Job)."""
        job = self.store.job(name)
        operation = self.store.new_operation(name.rpartition("/jobs/")[0], "Job", name)
        for execution in self.store.executions_of(name):
            await self.delete_execution(execution.name)
        operation.snapshot = message_json(job)
        del self.store.jobs[name]
        operation.finish()
        self.store.save()
        return self.store.render_operation(operation)

    def run_job(self, name: str, overrides: run_v2.RunJobRequest.Overrides) -> Any:
        """jobs.run: a new execution; the Operation JSON (done when the execution is)."""
        job = self.store.job(name)
        execution = self.new_execution(
            job, f"{name.rsplit('/', 1)[-1]}-{secrets.token_hex(3)[:5]}", overrides
        )
        operation = self.store.new_operation(
            name.rpartition("/jobs/")[0], "Execution", execution.name
        )
        operation.reports_failure = True
        self.store.save()
        return self.store.render_operation(operation)

    def new_execution(
        self, job: run_v2.Job, execution_id: str, overrides: run_v2.RunJobRequest.Overrides
    ) -> run_v2.Execution:
        """Create an execution of `job` (its template with `overrides`) and start it."""
        template = run_v2.ExecutionTemplate.deserialize(
            run_v2.ExecutionTemplate.serialize(job.template)
        )
        apply_overrides(template, overrides)
        moment = _now()
        execution = run_v2.Execution(
            name=f"{job.name}/executions/{execution_id}",
            uid=str(uuid.uuid4()),
            generation=1,
            observed_generation=1,
            create_time=moment,
            update_time=moment,
            job=job.name.rsplit("/", 1)[-1],
            labels={**template.labels, "run.googleapis.com/job": job.name.rsplit("/", 1)[-1]},
            launch_stage=job.launch_stage,
            parallelism=template.parallelism,
            task_count=template.task_count or 1,
            template=template.template,
            etag=new_etag(),
        )
        self.store.executions[execution.name] = execution
        job.execution_count += 1
        job.latest_created_execution = run_v2.ExecutionReference(
            name=execution.name,
            create_time=moment,
            completion_status=run_v2.ExecutionReference.CompletionStatus.EXECUTION_RUNNING,
        )
        if job.terminal_condition.state == Ready.CONDITION_FAILED:
            # A job whose image is missing: its executions fail at once, as Google's do.
            self.executor.fail(execution, job.terminal_condition.message)
        else:
            project = job.name.split("/")[1]
            self.executor.start(execution, never_start=self.faults.never_start(project))
        return execution

    async def cancel_execution(self, name: str) -> Any:
        """executions.cancel: the Operation JSON (done once the tasks are gone)."""
        self.store.execution(name)
        operation = self.store.new_operation(name.split("/jobs/")[0], "Execution", name)
        if self.executor.is_running(name):
            self.executor.background(self.executor.cancel(name))
        else:
            operation.finish()
        return self.store.render_operation(operation)

    def recover(self) -> None:
        """Executions a previous emulator left unfinished (it stopped) come back failed."""
        message = "The emulator stopped while this execution was running."
        for execution in self.store.executions.values():
            if execution.completion_time:
                continue
            execution.completion_time = _now()
            execution.reconciling = False
            execution.running_count = 0
            set_condition(execution, condition("Completed", Ready.CONDITION_FAILED, message))
        for operation in self.store.operations.values():
            if not operation.done:
                operation.finish({"code": 14, "message": message})
        self.store.save()

    async def delete_execution(self, name: str) -> Any:
        """executions.delete: kill its tasks (as Google does) and forget it."""
        execution = self.store.execution(name)
        operation = self.store.new_operation(name.split("/jobs/")[0], "Execution", name)
        await self.executor.cancel(name)
        operation.snapshot = message_json(execution)
        self.store.executions.pop(name, None)
        operation.finish()
        self.store.save()
        return self.store.render_operation(operation)
