"""Running executions: tasks, attempts, timeouts, retries, cancels, and the counts.

An execution's tasks run `parallelism` at a time (all at once when 0). Each task
gets up to `maxRetries` more attempts (Google's default 3 when the job leaves it
unset); an attempt that outlives the task `timeout` (default 600 s) is killed
with its process group. A cancel sends SIGTERM to every running task's process
group and SIGKILL after the grace period; tasks not started yet count as
cancelled. When every task is done the execution's `Completed` condition says
how it went, in Cloud Run's words, and the operations about it finish.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.cloud import run_v2

from skyrun.integrations.gcp.emulator.conditions import (
    State,
    completion,
    condition,
    job_ready,
    set_condition,
)
from skyrun.integrations.gcp.emulator.config import PASS_THROUGH_ENV, EmulatorConfig
from skyrun.integrations.gcp.emulator.runners import (
    ImageRunner,
    Prepared,
    ProcessRunner,
    TaskRunner,
    TaskSetupError,
)
from skyrun.integrations.gcp.emulator.state import Store, now

DEFAULT_TIMEOUT_SECONDS = 600.0
DEFAULT_MAX_RETRIES = 3  # Google's, when the task template leaves maxRetries unset
TIMEOUT_MESSAGE = "The configured timeout was reached."
FINISHED_KEPT = 10_000  # of `Executor.finished`: enough for a benchmark, bounded for a long run


@dataclass
class _Run:
    execution: run_v2.Execution
    never_start: bool
    setup_error: str | None = None
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    processes: set[asyncio.subprocess.Process] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


def _kill_group(process: asyncio.subprocess.Process, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


class Executor:
    """Starts, watches and cancels executions.

    Args:
        store: where executions and operations live.
        config: the execute mode, work directory, secrets and kill grace.
        changed: called after every change worth saving.
    """

    def __init__(self, store: Store, config: EmulatorConfig, changed: Callable[[], None]) -> None:
        self.store = store
        self.config = config
        self.changed = changed
        self.runner: TaskRunner = ImageRunner() if config.execute == "image" else ProcessRunner()
        self._runs: dict[str, _Run] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Finished executions' times, kept after their job is deleted (`GET
        # /_emulator/executions`: a benchmark compares them with the runs' own).
        self.finished: deque[dict[str, Any]] = deque(maxlen=FINISHED_KEPT)

    def log_dir(self, execution_name: str) -> Path:
        """Where an execution's task output goes (its `logUri`)."""
        return self.config.work_dir / "logs" / execution_name.replace("/", "_")

    def background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` on the loop, kept until done (and awaited by `close`)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def fail(self, execution: run_v2.Execution, message: str) -> None:
        """Start `execution` failing at once, its image missing (CONTAINER_MISSING)."""
        self.start(execution, setup_error=message)

    def start(
        self,
        execution: run_v2.Execution,
        *,
        never_start: bool = False,
        setup_error: str | None = None,
    ) -> None:
        """Run `execution` in the background (or, with `never_start`, keep it pending)."""
        execution.log_uri = self.log_dir(execution.name).as_uri()
        execution.reconciling = True
        set_condition(execution, condition("ResourcesAvailable", State.CONDITION_PENDING))
        set_condition(execution, condition("Started", State.CONDITION_PENDING))
        set_condition(execution, condition("Completed", State.CONDITION_PENDING))
        run = _Run(execution, never_start, setup_error)
        self._runs[execution.name] = run
        self.background(self._run(run))

    def is_running(self, execution_name: str) -> bool:
        """Whether the execution has not finished yet."""
        return execution_name in self._runs

    async def cancel(self, execution_name: str) -> None:
        """Stop an execution: SIGTERM its tasks' process groups, SIGKILL after the grace."""
        run = self._runs.get(execution_name)
        if run is None or run.cancelled.is_set():
            return
        run.cancelled.set()
        for process in list(run.processes):
            _kill_group(process, signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + self.config.kill_grace_seconds
        while run.processes and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for process in list(run.processes):
            _kill_group(process, signal.SIGKILL)

    async def close(self) -> None:
        """Kill every running task (the emulator is stopping)."""
        # A stopping emulator gives tasks 1 s, not 10: whoever stops it is waiting.
        self.config.kill_grace_seconds = min(self.config.kill_grace_seconds, 1.0)
        await asyncio.gather(*(self.cancel(name) for name in list(self._runs)))
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    async def _run(self, run: _Run) -> None:
        execution = run.execution
        template = execution.template
        try:
            if run.never_start:
                await run.cancelled.wait()
                execution.cancelled_count = execution.task_count
                return
            try:
                if run.setup_error:
                    raise TaskSetupError(run.setup_error, "CONTAINER_MISSING")
                prepared = await self.runner.prepare(template.containers[0])
                base_env = self._base_env(execution)
            except TaskSetupError as exc:
                execution.failed_count = execution.task_count
                run.failures.append(exc.message)
                if exc.reason:
                    set_condition(
                        execution,
                        condition("ResourcesAvailable", State.CONDITION_FAILED, exc.message),
                    )
                    job_ready(
                        self._job(execution),
                        execution,
                        State.CONDITION_FAILED,
                        exc.message,
                        exc.reason,
                    )
                return
            execution.start_time = now()
            set_condition(execution, condition("ResourcesAvailable", State.CONDITION_SUCCEEDED))
            set_condition(execution, condition("Started", State.CONDITION_SUCCEEDED))
            if self._job(execution).start_execution_token:
                job_ready(self._job(execution), execution, State.CONDITION_SUCCEEDED)
            self.changed()
            limit = execution.parallelism or execution.task_count
            slots = asyncio.Semaphore(limit)
            await asyncio.gather(
                *(
                    self._task(run, index, slots, prepared, base_env)
                    for index in range(execution.task_count)
                )
            )
        finally:
            self._finish(run)

    def _base_env(self, execution: run_v2.Execution) -> dict[str, str]:
        container = execution.template.containers[0]
        env: dict[str, str] = {}
        if self.config.execute == "process":
            env = {name: os.environ[name] for name in PASS_THROUGH_ENV if name in os.environ}
        for variable in container.env:
            if variable.value_source and variable.value_source.secret_key_ref.secret:
                env[variable.name] = self._secret(variable.value_source.secret_key_ref.secret)
            else:
                env[variable.name] = variable.value
        env["CLOUD_RUN_JOB"] = execution.job
        env["CLOUD_RUN_EXECUTION"] = execution.name.rsplit("/", 1)[-1]
        env["CLOUD_RUN_TASK_COUNT"] = str(execution.task_count)
        return env

    def _secret(self, secret: str) -> str:
        short = secret.rsplit("/", 1)[-1]
        for key in (secret, short):
            if key in self.config.secrets:
                return self.config.secrets[key]
        raise TaskSetupError(
            f"Secret '{secret}' was not found (the emulator knows only the secrets given "
            "with --secret NAME=VALUE)."
        )

    async def _task(
        self,
        run: _Run,
        index: int,
        slots: asyncio.Semaphore,
        prepared: Prepared,
        base_env: dict[str, str],
    ) -> None:
        execution = run.execution
        template = execution.template
        retries = template.max_retries if "max_retries" in template else DEFAULT_MAX_RETRIES
        async with slots:
            for attempt in range(retries + 1):
                if run.cancelled.is_set():
                    execution.cancelled_count += 1
                    return
                execution.running_count += 1
                self.changed()
                try:
                    failure = await self._attempt(run, index, attempt, prepared, base_env)
                finally:
                    execution.running_count -= 1
                if failure is None:
                    execution.succeeded_count += 1
                    return
                if run.cancelled.is_set():
                    execution.cancelled_count += 1
                    return
                if attempt < retries:
                    execution.retried_count += 1
                    continue
                execution.failed_count += 1
                task_name = f"{execution.name.rsplit('/', 1)[-1]}-task{index}"
                run.failures.append(f"Task {task_name} failed with message: {failure}")

    async def _attempt(
        self, run: _Run, index: int, attempt: int, prepared: Prepared, base_env: dict[str, str]
    ) -> str | None:
        execution = run.execution
        template = execution.template
        env = {
            **base_env,
            "CLOUD_RUN_TASK_INDEX": str(index),
            "CLOUD_RUN_TASK_ATTEMPT": str(attempt),
        }
        container = template.containers[0]
        log_dir = self.log_dir(execution.name)
        log_dir.mkdir(parents=True, exist_ok=True)
        working_dir: Path | str = container.working_dir
        scratch: Path | None = None
        if not working_dir and self.config.execute == "process":
            # A fresh directory per attempt, gone afterwards, as a container's filesystem is.
            scratch = self.config.work_dir / "tasks" / log_dir.name / f"{index}-{attempt}"
            scratch.mkdir(parents=True, exist_ok=True)
            working_dir = scratch
        timeout = template.timeout.total_seconds() if template.timeout else DEFAULT_TIMEOUT_SECONDS
        try:
            with (log_dir / f"task-{index}-attempt-{attempt}.log").open("ab") as log:
                async with self.runner.spawn(prepared, env, working_dir, log) as process:
                    run.processes.add(process)
                    try:
                        code = await asyncio.wait_for(process.wait(), timeout)
                    except TimeoutError:
                        _kill_group(process, signal.SIGKILL)
                        await process.wait()
                        return TIMEOUT_MESSAGE
                    finally:
                        run.processes.discard(process)
        except TaskSetupError as exc:
            return exc.message
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        if code == 0:
            return None
        if code < 0:
            return f"The container was terminated by signal {-code}."
        return f"The container exited with an exit code of {code}."

    def _job(self, execution: run_v2.Execution) -> run_v2.Job:
        # A deleted job's executions finish unseen: a detached Job takes the updates.
        return self.store.jobs.get(execution.name.split("/executions/")[0]) or run_v2.Job()

    def _finish(self, run: _Run) -> None:
        execution = run.execution
        self._runs.pop(execution.name, None)
        execution.completion_time = now()
        execution.reconciling = False
        completed, status = completion(execution, run.cancelled.is_set(), run.failures)
        if not execution.start_time:
            set_condition(execution, condition("Started", State.CONDITION_FAILED))
        set_condition(execution, completed)
        self.finished.append(
            {
                "name": execution.name,
                "createTime": execution.create_time.isoformat(),
                "startTime": execution.start_time.isoformat() if execution.start_time else None,
                "completionTime": execution.completion_time.isoformat(),
                "succeeded": completed.state == State.CONDITION_SUCCEEDED,
            }
        )
        job = self._job(execution)
        if job.latest_created_execution.name == execution.name:
            job.latest_created_execution.completion_time = execution.completion_time
            job.latest_created_execution.completion_status = status  # type: ignore[assignment]
        if job.run_execution_token:
            job_ready(self._job(execution), execution, completed.state, completed.message)
        error = None
        if completed.state != State.CONDITION_SUCCEEDED:
            error = {"code": 10 if run.cancelled.is_set() else 9, "message": completed.message}
        for operation in self.store.operations.values():
            if operation.resource_name == execution.name and not operation.done:
                operation.finish(error if operation.reports_failure else None)
        self.changed()
