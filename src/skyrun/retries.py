"""The one way skyrun waits before trying again: exponential backoff with jitter, on tenacity.

Two shapes, one policy:

* `retry_call(fn, ...)`: call `fn` until it works, a bounded number of times
  or for a bounded time (API requests, final states, cloud calls);
* `Backoff`: the delays for a loop that runs until stopped and must wait
  between failures itself (a worker's polls, reconnecting to a server).

Either way the delay after the n-th failure is `initial * 2**(n-1)` plus up
to `initial` of random jitter, capped at `maximum`; an error that carries a
`retry_after` (seconds, e.g. from an HTTP Retry-After header) waits at least
that long, up to `RETRY_AFTER_CAP`. A `stop` event cuts a wait short and ends
the retries, so a process shutting down never sleeps out a backoff.

(Loaded only when something failed: tenacity is not on the hot path of a request.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import tenacity

T = TypeVar("T")

# The longest a server's Retry-After is honoured for: past it, a client would look hung.
RETRY_AFTER_CAP = 60.0


def retry_after_of(exc: BaseException | None) -> float | None:
    """The `retry_after` seconds an error asks for, if any."""
    value = getattr(exc, "retry_after", None)
    if isinstance(value, int | float) and value >= 0:
        return min(float(value), RETRY_AFTER_CAP)
    return None


class _Wait(tenacity.wait.wait_base):
    """Exponential with jitter, at least the failure's Retry-After."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._exponential = tenacity.wait_exponential_jitter(
            multiplier=initial, max=maximum, jitter=initial
        )

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        delay = float(self._exponential(retry_state))
        outcome = retry_state.outcome
        asked = retry_after_of(outcome.exception()) if outcome is not None else None
        return max(delay, asked) if asked is not None else delay


def retry_call(
    fn: Callable[[], T],
    *,
    should_retry: Callable[[BaseException], bool],
    attempts: int | None = None,
    timeout: float | None = None,
    initial: float = 0.2,
    maximum: float = 5.0,
    stop: threading.Event | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Call `fn` until it returns, retrying the errors `should_retry` accepts.

    Args:
        fn: What to call; it raises to fail.
        should_retry: Whether an error is worth another try (others propagate at once).
        attempts: The most calls in all (None: no limit by count).
        timeout: The most seconds to keep trying (None: no limit by time). The
            last wait is shortened so no attempt starts after it.
        initial: The first delay, in seconds.
        maximum: The longest delay (a Retry-After may ask for more).
        stop: An event that ends the waiting and the retries when set.
        on_retry: Called with the error and the delay before each wait (to log it).

    Returns:
        What `fn` returned.

    Raises:
        The last error, when it is not to be retried or the attempts, time or
        `stop` ran out.
    """
    stops: list[Any] = []
    if attempts is not None:
        stops.append(tenacity.stop_after_attempt(max(1, attempts)))
    if timeout is not None:
        stops.append(tenacity.stop_before_delay(timeout))
    if stop is not None:
        stops.append(tenacity.stop_when_event_set(stop))
    stop_condition: Any = tenacity.stop_any(*stops) if stops else tenacity.stop_never

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        if on_retry is not None and retry_state.outcome is not None:
            error = retry_state.outcome.exception()
            if error is not None:
                on_retry(error, retry_state.upcoming_sleep)

    failures: list[BaseException] = []

    def attempt() -> T:
        if stop is not None and stop.is_set() and failures:
            raise failures[-1]  # woken by `stop`: no further attempt
        try:
            return fn()
        except BaseException as exc:
            failures[:] = [exc]
            raise

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(should_retry),
        stop=stop_condition,
        wait=_Wait(initial, maximum),
        sleep=_sleeper(stop),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(attempt)


def _sleeper(stop: threading.Event | None) -> Callable[[float], None]:
    if stop is None:
        return time.sleep
    event = stop

    def sleep(seconds: float) -> None:
        event.wait(seconds)

    return sleep


class Backoff:
    """Delays for a loop that keeps trying until it is stopped.

    `failed()` after each failure gives the next delay (growing, jittered,
    capped); `succeeded()` starts over. The loop does its own waiting (on an
    event it can be woken from).
    """

    def __init__(self, initial: float = 0.5, maximum: float = 10.0) -> None:
        self._wait = _Wait(initial, maximum)
        self._state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        self.failures = 0

    def failed(self, error: BaseException | None = None) -> float:
        """Count a failure; the seconds to wait before the next try."""
        self.failures += 1
        self._state.attempt_number = self.failures
        if error is not None:
            self._state.set_exception((type(error), error, error.__traceback__))
        else:
            self._state.outcome = None
        return self._wait(self._state)

    def succeeded(self) -> None:
        """The operation worked: the next failure waits the shortest delay again."""
        self.failures = 0
