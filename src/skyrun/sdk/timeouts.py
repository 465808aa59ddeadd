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
    """The run took longer than its timeout_seconds."""


def call_with_timeout(fn: Callable[..., R], args: Any, kwargs: Any, timeout: float | None) -> R:
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
        return _with_alarm(fn, args, kwargs, timeout)
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
        raise RunTimeout(f"timed out after {timeout:g} seconds")
    if error:
        raise error[0]
    return result[0]


def _with_alarm(fn: Callable[..., R], args: Any, kwargs: Any, timeout: float) -> R:
    def on_alarm(signum: int, frame: Any) -> None:
        raise RunTimeout(f"timed out after {timeout:g} seconds")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


async def await_with_timeout(coro: Coroutine[Any, Any, R], timeout: float | None) -> R:
    if timeout is None:
        return await coro
    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        raise RunTimeout(f"timed out after {timeout:g} seconds") from None
