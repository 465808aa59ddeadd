"""Runs a flow call as an orchestrated flow run.

The flow run's own transitions (RUNNING, retries, the final state) go to the
API synchronously, because the server may refuse them; task runs and logs are
buffered by the Recorder and flushed before the final state is proposed.
"""

from __future__ import annotations

import _thread
import asyncio
import logging
import threading
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from skyrun.client.client import get_client
from skyrun.schemas.core import FlowRunCreate
from skyrun.schemas.orchestration import Decision
from skyrun.schemas.states import TERMINAL_TYPES, State, StateCreate, StateType, utcnow
from skyrun.sdk.context import (
    FlowRunContext,
    current_flow_run,
    current_task_run,
    flow_run_context,
)
from skyrun.sdk.heartbeats import heartbeats_for
from skyrun.sdk.logging import configure_logging, enable_log_prints
from skyrun.sdk.parameters import ParameterError, jsonable
from skyrun.sdk.recorder import recorder_for
from skyrun.sdk.task_runners import ThreadPoolTaskRunner
from skyrun.sdk.timeouts import RunTimeout, await_with_timeout, call_with_timeout
from skyrun.settings import get_settings

if TYPE_CHECKING:
    from skyrun.sdk.flows import Flow

logger = logging.getLogger("skyrun.flow_runs")
_flow_ids: dict[tuple[int, str], uuid.UUID] = {}
_FAILED_TYPES = frozenset({StateType.FAILED, StateType.CRASHED})


class FlowRunAborted(RuntimeError):
    """The server refused to let this process run the flow run (e.g. it already ran)."""


class FlowRunCancelled(BaseException):
    """The flow run was cancelled while it ran."""


class FlowRunEngine:
    """The steps of one flow run, shared by the sync and async drivers."""

    def __init__(self, flow: Flow[Any, Any], flow_run_id: uuid.UUID | None = None) -> None:
        settings = get_settings()
        configure_logging(settings.logging_level)
        self.flow = flow
        self.client = get_client(settings)
        self.recorder = recorder_for(self.client, settings.flush_interval)
        self.heartbeats = heartbeats_for(self.client, settings.flow_run_heartbeat_interval)
        self.final_state_timeout = settings.final_state_timeout
        self.existing_run_id = flow_run_id
        self.ctx: FlowRunContext | None = None
        self.attempt = 0
        self._token: Any = None
        self._cancel_requested = threading.Event()

    # -- start ------------------------------------------------------------
    def begin(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """Validate parameters, create (or take over) the run, enter RUNNING."""
        flow = self.flow
        model = flow.parameters
        try:
            parameters = model.validate(model.bind(args, kwargs))
        except ParameterError as exc:
            self._record_rejected_call(args, kwargs, exc)
            raise
        if self.existing_run_id is None:
            run = self.client.create_flow_run(
                FlowRunCreate(
                    flow_id=self._flow_id(),
                    parameters=jsonable(parameters),
                    tags=flow.tags,
                    parent_flow_run_id=_parent_flow_run_id(),
                    parent_task_run_id=_parent_task_run_id(),
                    state=StateCreate(type=StateType.RUNNING),
                )
            )
            run_id, run_name = run.id, run.name
        else:
            run_id = self.existing_run_id
            response = self.client.set_flow_run_state(run_id, StateCreate(type=StateType.RUNNING))
            if response.decision != Decision.ACCEPT:
                raise FlowRunAborted(f"flow run {run_id} cannot start: {response.reason}")
            run_name = self.client.read_flow_run(run_id).name
        if flow.log_prints:
            enable_log_prints()
        self.ctx = FlowRunContext(
            flow_name=flow.name,
            flow_run_id=run_id,
            flow_run_name=run_name,
            parameters=parameters,
            client=self.client,
            recorder=self.recorder,
            task_runner=ThreadPoolTaskRunner(flow.task_runner_max_workers),
            log_prints=flow.log_prints,
        )
        # Asked before this run's context is set, which would make it its own parent.
        top_level = _parent_flow_run_id() is None
        self._token = flow_run_context.set(self.ctx)
        logger.info("Beginning flow run %r for flow %r", run_name, flow.name)
        # Every flow run heartbeats (a subflow is a RUNNING run of its own); only a
        # top-level run in the main thread can be interrupted when it is cancelled.
        interruptible = top_level and threading.current_thread() is threading.main_thread()
        self.heartbeats.add(run_id, self._watch_for_cancel if interruptible else None)
        return model.call_args(parameters)

    def _flow_id(self) -> uuid.UUID:
        key = (id(self.client), self.flow.name)
        flow_id = _flow_ids.get(key)
        if flow_id is None:
            flow_id = _flow_ids[key] = self.client.create_flow(self.flow.name).id
        return flow_id

    def _record_rejected_call(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], exc: ParameterError
    ) -> None:
        """A call with bad parameters is still a run: recorded FAILED with the reason."""
        message = str(exc)
        if self.existing_run_id is not None:
            self.client.set_flow_run_state(
                self.existing_run_id,
                StateCreate(type=StateType.FAILED, message=message),
                retry_for=self.final_state_timeout,
            )
        else:
            try:
                # Stored under the parameters' names when the call at least binds.
                raw = self.flow.parameters.bind(args, kwargs)
            except ParameterError:
                raw = dict(kwargs) | {f"arg{i}": a for i, a in enumerate(args)}
            self.client.create_flow_run(
                FlowRunCreate(
                    flow_id=self._flow_id(),
                    parameters=jsonable(raw),
                    tags=self.flow.tags,
                    parent_flow_run_id=_parent_flow_run_id(),
                    state=StateCreate(type=StateType.FAILED, message=message),
                )
            )
        logger.error("Flow %r was called with invalid parameters: %s", self.flow.name, message)

    # -- cancellation -------------------------------------------------------
    def _watch_for_cancel(self, state: State) -> None:
        """Each heartbeat's answer: a run being cancelled interrupts the flow body."""
        if self.ctx is None or self._cancel_requested.is_set():
            return
        if state.type in (StateType.CANCELLING, StateType.CANCELLED):
            self._cancel_requested.set()
            self.heartbeats.remove(self.ctx.flow_run_id)
            _thread.interrupt_main()

    # -- outcomes -----------------------------------------------------------
    def call(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        return call_with_timeout(self.flow.fn, args, kwargs, self.flow.timeout_seconds, self)

    async def call_async(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        return await await_with_timeout(
            self.flow.fn(*args, **kwargs), self.flow.timeout_seconds, self
        )

    def _drain(self) -> None:
        assert self.ctx is not None
        self.ctx.task_runner.shutdown()
        self.recorder.flush()

    def succeed(self) -> None:
        self._drain()
        self._propose(StateCreate(type=StateType.COMPLETED))

    def fail_or_retry(self, exc: BaseException) -> float | None:
        """Record a failure; returns the delay before a retry, or None for final."""
        self._drain()
        message = f"{type(exc).__name__}: {exc}"
        if self.attempt < self.flow.retries:
            self.attempt += 1
            delay = self.flow.retry_delay_seconds
            logger.warning("Run failed (%s); retry %d in %gs", message, self.attempt, delay)
            self._propose(
                StateCreate(
                    type=StateType.SCHEDULED,
                    name="AwaitingRetry",
                    message=message,
                    scheduled_time=utcnow() + timedelta(seconds=delay),
                )
            )
            return delay
        # A task's timeout propagating through the flow body fails the flow
        # plainly; only the flow's own limit makes it TimedOut.
        own_timeout = isinstance(exc, RunTimeout) and exc.owner is self
        name = "TimedOut" if own_timeout else "Failed"
        self._propose(StateCreate(type=StateType.FAILED, name=name, message=message))
        return None

    def retry(self) -> None:
        self._propose(StateCreate(type=StateType.RUNNING, name="Retrying"), force_wait=True)

    def interrupted(self) -> bool:
        """Record an interrupt: CANCELLED if a cancel was asked for, else CRASHED."""
        self._drain()
        if self._cancel_requested.is_set():
            self._propose(StateCreate(type=StateType.CANCELLED, message="cancelled while running"))
            return True
        self._propose(
            StateCreate(type=StateType.CRASHED, message="interrupted (KeyboardInterrupt)")
        )
        return False

    def _propose(self, state: StateCreate, force_wait: bool = False) -> None:
        assert self.ctx is not None
        run_id = self.ctx.flow_run_id
        # A final state is the one thing nobody else can report: it waits out a server
        # restart (bounded by SKYRUN_FINAL_STATE_TIMEOUT) rather than leave the run RUNNING.
        retry_for = self.final_state_timeout if state.type in TERMINAL_TYPES else None
        response = self.client.set_flow_run_state(run_id, state, retry_for=retry_for)
        if response.decision == Decision.WAIT and force_wait:
            time.sleep(min(response.delay_seconds or 0.0, 5.0))
            response = self.client.set_flow_run_state(run_id, state, force=True)
        final = response.state
        if final is not None and final.type in TERMINAL_TYPES:
            # A failure is an error in the run's own log, not news at INFO.
            level = logging.ERROR if final.type in _FAILED_TYPES else logging.INFO
            logger.log(level, "Finished in state %s(%s)", final.name, final.message or "")
        elif response.decision != Decision.ACCEPT:
            logger.warning("The server did not accept %s: %s", state.type.value, response.reason)

    def end(self) -> None:
        if self.ctx is not None:
            self.heartbeats.remove(self.ctx.flow_run_id)
        if self._token is not None:
            flow_run_context.reset(self._token)
            self._token = None


def _parent_flow_run_id() -> uuid.UUID | None:
    parent = current_flow_run()
    return parent.flow_run_id if parent else None


def _parent_task_run_id() -> uuid.UUID | None:
    task_run = current_task_run()
    return task_run.task_run_id if task_run else None


def run_flow(
    flow: Flow[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    flow_run_id: uuid.UUID | None = None,
) -> Any:
    """Run a sync flow: returns its value or raises its exception (run FAILED)."""
    engine = FlowRunEngine(flow, flow_run_id)
    call_args, call_kwargs = engine.begin(args, kwargs)
    try:
        while True:
            try:
                result = engine.call(call_args, call_kwargs)
            except KeyboardInterrupt:
                if engine.interrupted():
                    raise FlowRunCancelled(
                        f"flow run {engine.ctx and engine.ctx.flow_run_id} was cancelled"
                    ) from None
                raise
            except Exception as exc:
                delay = engine.fail_or_retry(exc)
                if delay is None:
                    raise
                time.sleep(delay)
                engine.retry()
                continue
            engine.succeed()
            return result
    finally:
        engine.end()


async def run_flow_async(
    flow: Flow[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    flow_run_id: uuid.UUID | None = None,
) -> Any:
    """Run an async flow (see run_flow)."""
    engine = FlowRunEngine(flow, flow_run_id)
    call_args, call_kwargs = engine.begin(args, kwargs)
    try:
        while True:
            try:
                result = await engine.call_async(call_args, call_kwargs)
            except (KeyboardInterrupt, asyncio.CancelledError):
                if engine.interrupted():
                    raise FlowRunCancelled("the flow run was cancelled") from None
                raise
            except Exception as exc:
                delay = engine.fail_or_retry(exc)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                engine.retry()
                continue
            engine.succeed()
            return result
    finally:
        engine.end()
