"""Conditions in Cloud Run's words: an execution's and a job's, from what happened."""

from __future__ import annotations

from google.cloud import run_v2

from skyrun.integrations.gcp.emulator.state import now

State = run_v2.Condition.State
Reason = run_v2.Condition.ExecutionReason
Status = run_v2.ExecutionReference.CompletionStatus
CANCELLED_MESSAGE = "The execution was cancelled."


def condition(type_: str, state: int, message: str = "", reason: int = 0) -> run_v2.Condition:
    """A condition of `type_` changed now (`reason`: an ExecutionReason)."""
    made = run_v2.Condition(type_=type_, state=state, message=message, last_transition_time=now())
    if reason:
        made.execution_reason = reason  # type: ignore[assignment]
    return made


def set_condition(execution: run_v2.Execution, new: run_v2.Condition) -> None:
    """Replace the execution's condition of the same type with `new`."""
    kept = [c for c in execution.conditions if c.type_ != new.type_]
    execution.conditions = [*kept, new]


def completion(
    execution: run_v2.Execution, cancelled: bool, failures: list[str]
) -> tuple[run_v2.Condition, int]:
    """The finished execution's `Completed` condition and its completion status.

    Args:
        execution: the execution, its counts and times final.
        cancelled: whether it was cancelled (or deleted) before it finished.
        failures: why each failed task failed, first failure first.
    """
    if cancelled:
        completed = condition(
            "Completed", State.CONDITION_FAILED, CANCELLED_MESSAGE, Reason.CANCELLED
        )
        return completed, Status.EXECUTION_CANCELLED
    if failures:
        message = f"{execution.failed_count} of {execution.task_count} tasks failed. {failures[0]}"
        completed = condition(
            "Completed", State.CONDITION_FAILED, message, Reason.NON_ZERO_EXIT_CODE
        )
        return completed, Status.EXECUTION_FAILED
    seconds = (execution.completion_time - execution.start_time).total_seconds()
    message = f"Execution completed successfully in {seconds:.1f}s."
    return condition("Completed", State.CONDITION_SUCCEEDED, message), Status.EXECUTION_SUCCEEDED


def job_ready(
    job: run_v2.Job, execution: run_v2.Execution, state: int, message: str = "", reason: str = ""
) -> None:
    """Settle the Ready condition of a job created with an execution token.

    Such a job is Ready once that execution has started (startExecutionToken) or
    completed (runExecutionToken); other executions and jobs are left alone.

    Args:
        job: the execution's job.
        execution: the execution that started, failed to start, or completed.
        state: the Ready condition's state.
        message: why it is not ready.
        reason: a CommonReason name, e.g. CONTAINER_MISSING.
    """
    token = job.start_execution_token or job.run_execution_token
    if not token or not execution.name.endswith(f"-{token}"):
        return
    ready = run_v2.Condition(
        type_="Ready",
        state=state,
        message="" if state == State.CONDITION_SUCCEEDED else message,
        last_transition_time=now(),
    )
    if reason:
        ready.reason = getattr(run_v2.Condition.CommonReason, reason)
    job.terminal_condition = ready
    job.reconciling = False
