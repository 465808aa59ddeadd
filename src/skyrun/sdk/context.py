"""The run context: which flow run and task run the current code belongs to."""

from __future__ import annotations

import contextvars
import itertools
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skyrun.client.client import SkyrunClient
    from skyrun.sdk.recorder import Recorder
    from skyrun.sdk.task_runners import ThreadPoolTaskRunner


@dataclass
class FlowRunContext:
    """Set while a flow run's function executes."""

    flow_name: str
    flow_run_id: uuid.UUID
    flow_run_name: str
    parameters: dict[str, Any]
    client: SkyrunClient
    recorder: Recorder
    task_runner: ThreadPoolTaskRunner
    log_prints: bool = False
    _task_counters: dict[str, itertools.count[int]] = field(default_factory=dict)

    def next_task_run_name(self, task_name: str) -> str:
        counter = self._task_counters.get(task_name)
        if counter is None:
            counter = self._task_counters[task_name] = itertools.count()
        return f"{task_name}-{next(counter)}"


@dataclass
class TaskRunContext:
    """Set while a task run's function executes."""

    task_name: str
    task_run_id: uuid.UUID
    task_run_name: str
    flow_run: FlowRunContext
    log_prints: bool = False


flow_run_context: contextvars.ContextVar[FlowRunContext | None] = contextvars.ContextVar(
    "skyrun_flow_run", default=None
)
task_run_context: contextvars.ContextVar[TaskRunContext | None] = contextvars.ContextVar(
    "skyrun_task_run", default=None
)


def current_flow_run() -> FlowRunContext | None:
    return flow_run_context.get()


def current_task_run() -> TaskRunContext | None:
    return task_run_context.get()
