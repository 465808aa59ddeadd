"""What a Cloud Run execution's fields say about how its run ended (pure functions).

A finished execution has a `Completed` condition: SUCCEEDED, or FAILED with
Cloud Run's message ("The configured timeout was reached.", a task's exit
code). A `ResourcesAvailable` or `Started` condition that FAILED means the
container will never run (a missing image, a secret it cannot read): the
worker stops waiting at once instead of polling an execution that cannot start.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from google.cloud import run_v2

from skyrun.workers.base import InfrastructureResult

Condition = run_v2.Condition
State = run_v2.Condition.State

# How much earlier than a run's claim its job's execution must have been created to
# count as an earlier attempt's (room for the clocks of Cloud Run and the server).
CLOCK_MARGIN = timedelta(seconds=60)

# Conditions whose failure means the container never starts.
START_CONDITIONS = ("ResourcesAvailable", "Started", "ContainerReady", "Ready")


def condition(conditions: list[run_v2.Condition], type_: str) -> run_v2.Condition | None:
    """The condition of a type, if present."""
    for item in conditions:
        if item.type_ == type_:
            return item
    return None


def _describe(item: run_v2.Condition, fallback: str) -> str:
    reason = ""
    if item.reason:
        reason = Condition.CommonReason(item.reason).name
    elif item.execution_reason:
        reason = Condition.ExecutionReason(item.execution_reason).name
    message = item.message or fallback
    return f"{message} ({reason})" if reason and reason not in message else message


def was_cancelled(execution: run_v2.Execution) -> bool:
    completed = condition(list(execution.conditions), "Completed")
    reason = completed.execution_reason if completed is not None else 0
    return execution.cancelled_count > 0 or reason in (
        Condition.ExecutionReason.CANCELLED,
        Condition.ExecutionReason.CANCELLING,
    )


def execution_outcome(execution: run_v2.Execution) -> InfrastructureResult | None:
    """How a finished (or never-starting) execution ended; None while it may still run.

    Success is exit code 0 (the flow reported its own state); a failure is exit
    code 1 with Cloud Run's message, so the base loop marks the run CRASHED
    with it if the flow reported nothing; a cancelled execution has no exit code.
    """
    conditions = list(execution.conditions)
    completed = condition(conditions, "Completed")
    finished = execution.completion_time is not None or (
        completed is not None
        and completed.state in (State.CONDITION_SUCCEEDED, State.CONDITION_FAILED)
    )
    if finished:
        if was_cancelled(execution):
            return InfrastructureResult(
                exit_code=None, reason="the Cloud Run execution was cancelled"
            )
        succeeded = completed is not None and completed.state == State.CONDITION_SUCCEEDED
        if succeeded or (
            completed is None and execution.succeeded_count >= max(1, execution.task_count)
        ):
            return InfrastructureResult(exit_code=0)
        failure = completed or _first_failed(conditions)
        message = (
            _describe(failure, "the Cloud Run execution failed")
            if failure is not None
            else "the Cloud Run execution failed"
        )
        return InfrastructureResult(exit_code=1, reason=message)
    if execution.start_time is None and execution.running_count == 0:
        for type_ in START_CONDITIONS:
            item = condition(conditions, type_)
            if item is not None and item.state == State.CONDITION_FAILED:
                return InfrastructureResult(
                    exit_code=1, reason=_describe(item, "the container could not start")
                )
    return None


def _first_failed(conditions: list[run_v2.Condition]) -> run_v2.Condition | None:
    for item in conditions:
        if item.state == State.CONDITION_FAILED:
            return item
    return None


def job_start_failure(job: run_v2.Job) -> str | None:
    """Cloud Run's message when a job could not start its execution (e.g. a missing image)."""
    terminal = job.terminal_condition
    if terminal is not None and terminal.state == State.CONDITION_FAILED:
        return _describe(terminal, "the Cloud Run job could not start")
    return None


def left_from_earlier_attempt(job: run_v2.Job, claimed_at: datetime | None) -> bool:
    """Whether a run's existing job is an earlier attempt's: finished, and started well
    before the claim being launched now (a job this claim made is never replaced)."""
    if claimed_at is None:
        return False
    latest = job.latest_created_execution
    if latest.name:
        finished = latest.completion_time is not None
        created = latest.create_time or job.create_time
    else:
        finished = job_start_failure(job) is not None
        created = job.create_time
    return bool(finished and created is not None and created < claimed_at - CLOCK_MARGIN)
