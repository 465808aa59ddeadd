"""Runs task calls inside a flow: states, retries, timeouts, futures, map.

Task-run states are buffered in the flow run's Recorder (no API call per
state); only the flow run's own transitions are orchestrated synchronously.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from skyrun.sdk.context import FlowRunContext, TaskRunContext, current_flow_run, task_run_context
from skyrun.sdk.futures import FutureList, SkyrunFuture, resolve_futures, unmapped
from skyrun.sdk.task_records import TaskRecord
from skyrun.sdk.timeouts import RunTimeout, await_with_timeout, call_with_timeout

if TYPE_CHECKING:
    from skyrun.sdk.tasks import Task

logger = logging.getLogger("skyrun.task_runs")


def call_task(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A direct call: run now, return the value (a coroutine for async tasks)."""
    flow_run = current_flow_run()
    if flow_run is None:
        # Outside a flow a task is just its function.
        return task.fn(*args, **kwargs)
    if task.is_async:
        return _run_async(task, flow_run, args, kwargs)
    return _run_sync(task, flow_run, args, kwargs)


def submit_task(
    task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> SkyrunFuture[Any]:
    flow_run = _require_flow_run(task, "submit")
    task_run_id = uuid.uuid4()
    if task.is_async:
        future = flow_run.task_runner.submit(
            lambda: asyncio.run(_run_async(task, flow_run, args, kwargs, task_run_id))
        )
    else:
        future = flow_run.task_runner.submit(_run_sync, task, flow_run, args, kwargs, task_run_id)
    return SkyrunFuture(future, task_run_id)


def map_task(
    task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> FutureList[Any]:
    _require_flow_run(task, "map")
    calls = _expand_map_arguments(task.name, args, kwargs)
    return FutureList(submit_task(task, a, k) for a, k in calls)


def _require_flow_run(task: Task[Any, Any], verb: str) -> FlowRunContext:
    flow_run = current_flow_run()
    if flow_run is None:
        raise RuntimeError(
            f"{task.name}.{verb}() needs a flow run; call it inside a function decorated with @flow"
        )
    return flow_run


def _is_mappable(value: Any) -> bool:
    return not isinstance(value, str | bytes | dict | unmapped) and isinstance(value, Iterable)


def _expand_map_arguments(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    args_l = [list(a) if _is_mappable(a) else a for a in args]
    kwargs_l = {k: (list(v) if _is_mappable(v) else v) for k, v in kwargs.items()}
    lengths = {len(v) for v in [*args_l, *kwargs_l.values()] if isinstance(v, list)}
    if not lengths:
        raise ValueError(f"{name}.map() needs at least one iterable argument")
    if len(lengths) > 1:
        raise ValueError(f"{name}.map() got iterables of different lengths: {sorted(lengths)}")
    count = lengths.pop()

    def pick(value: Any, i: int) -> Any:
        if isinstance(value, unmapped):
            return value.value
        return value[i] if isinstance(value, list) else value

    return [
        (tuple(pick(a, i) for a in args_l), {k: pick(v, i) for k, v in kwargs_l.items()})
        for i in range(count)
    ]


def _start(
    task: Task[Any, Any], flow_run: FlowRunContext, task_run_id: uuid.UUID | None
) -> tuple[TaskRecord, TaskRunContext]:
    task_run_id = task_run_id or uuid.uuid4()
    name = flow_run.next_task_run_name(task.name)
    record = TaskRecord(task_run_id, flow_run.flow_run_id, name, task.task_key, task.tags)
    flow_run.recorder.add_state(record, "PENDING", "Pending")
    log_prints = task.log_prints if task.log_prints is not None else flow_run.log_prints
    return record, TaskRunContext(task.name, task_run_id, name, flow_run, log_prints)


def _run_sync(
    task: Task[Any, Any],
    flow_run: FlowRunContext,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    task_run_id: uuid.UUID | None = None,
) -> Any:
    record, ctx = _start(task, flow_run, task_run_id)
    recorder = flow_run.recorder
    args = resolve_futures(args)
    kwargs = resolve_futures(kwargs)
    token = task_run_context.set(ctx)
    try:
        attempt = 0
        while True:
            recorder.add_state(record, "RUNNING", "Running" if attempt == 0 else "Retrying")
            try:
                result = call_with_timeout(task.fn, args, kwargs, task.timeout_seconds, record)
            except Exception as exc:
                if attempt < task.retries:
                    attempt += 1
                    _await_retry(task, record, recorder, exc)
                    time.sleep(task.retry_delay_seconds)
                    continue
                _fail(record, recorder, exc)
                raise
            recorder.add_state(record, "COMPLETED", "Completed")
            return result
    finally:
        task_run_context.reset(token)


async def _run_async(
    task: Task[Any, Any],
    flow_run: FlowRunContext,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    task_run_id: uuid.UUID | None = None,
) -> Any:
    record, ctx = _start(task, flow_run, task_run_id)
    recorder = flow_run.recorder
    args = resolve_futures(args)
    kwargs = resolve_futures(kwargs)
    token = task_run_context.set(ctx)
    try:
        attempt = 0
        while True:
            recorder.add_state(record, "RUNNING", "Running" if attempt == 0 else "Retrying")
            try:
                result = await await_with_timeout(
                    task.fn(*args, **kwargs), task.timeout_seconds, record
                )
            except Exception as exc:
                if attempt < task.retries:
                    attempt += 1
                    _await_retry(task, record, recorder, exc)
                    await asyncio.sleep(task.retry_delay_seconds)
                    continue
                _fail(record, recorder, exc)
                raise
            recorder.add_state(record, "COMPLETED", "Completed")
            return result
    finally:
        task_run_context.reset(token)


def _await_retry(task: Task[Any, Any], record: TaskRecord, recorder: Any, exc: Exception) -> None:
    logger.warning(
        "failed with %s: %s; retrying in %gs", type(exc).__name__, exc, task.retry_delay_seconds
    )
    recorder.add_state(record, "SCHEDULED", "AwaitingRetry", f"{type(exc).__name__}: {exc}")


def _fail(record: TaskRecord, recorder: Any, exc: Exception) -> None:
    name = "TimedOut" if isinstance(exc, RunTimeout) and exc.owner is record else "Failed"
    recorder.add_state(record, "FAILED", name, f"{type(exc).__name__}: {exc}")
    logger.error("finished in state %s: %s: %s", name, type(exc).__name__, exc)
