"""Running a call with a time limit."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

R = TypeVar("R")


class RunTimeout(TimeoutError):
    """The run took longer than its timeout_seconds.

    `owner` is whatever the caller passed to say whose limit ran out, so that a
    flow can tell its own timeout from a task's timeout propagating through it.
    """

    def __init__(self, timeout: float, owner: object = None) -> None:
        super().__init__(f"timed out after {timeout:g} seconds")
        self.owner = owner


def call_with_timeout(
    fn: Callable[..., R], args: Any, kwargs: Any, timeout: float | None, owner: object = None
) -> R:
    """Call `fn`, raising RunTimeout after `timeout` seconds.

    On the main thread a SIGALRM timer interrupts the call itself. Elsewhere
    the call runs on a helper thread that is abandoned when time is up (Python
    cannot stop a thread); the run is still recorded as timed out.
    """
    if timeout is None:
        return fn(*args, **kwargs)
    on_main = threading.current_thread() is threading.main_thread()
    # An alarm already set belongs to an enclosing run's timeout: leave it be.
    if on_main and hasattr(signal, "setitimer") and signal.getitimer(signal.ITIMER_REAL)[0] == 0:
        return _with_alarm(fn, args, kwargs, timeout, owner)
    result: list[Any] = []
    error: list[BaseException] = []
    # The helper thread must see the caller's flow run and task run (logging,
    # nested tasks and artifacts look them up in context variables).
    context = contextvars.copy_context()

    def target() -> None:
        try:
            result.append(context.run(fn, *args, **kwargs))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise RunTimeout(timeout, owner)
    if error:
        raise error[0]
    return result[0]


def _with_alarm(fn: Callable[..., R], args: Any, kwargs: Any, timeout: float, owner: object) -> R:
    def on_alarm(signum: int, frame: Any) -> None:
        raise RunTimeout(timeout, owner)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


async def await_with_timeout(
    coro: Coroutine[Any, Any, R], timeout: float | None, owner: object = None
) -> R:
    if timeout is None:
        return await coro
    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        raise RunTimeout(timeout, owner) from None
