"""The one backoff policy: growth, jitter, cap, Retry-After, limits and the stop event."""

from __future__ import annotations

import threading
import time

import pytest

from skyrun.retries import RETRY_AFTER_CAP, Backoff, retry_call


class Flaky(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("flaky")
        self.retry_after = retry_after


def test_backoff_grows_with_jitter_up_to_its_cap_and_starts_over_after_success() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0)
    delays = [backoff.failed() for _ in range(6)]
    for n, delay in enumerate(delays[:3]):
        assert 2**n <= delay <= 2**n + 1.0  # initial * 2**(n-1) plus up to `initial` of jitter
    assert delays[4:] == [10.0, 10.0]
    # Jitter: two backoffs do not wait in lockstep.
    assert len({round(Backoff(1.0, 10.0).failed(), 6) for _ in range(20)}) > 1
    backoff.succeeded()
    assert 1.0 <= backoff.failed() <= 2.0


def test_backoff_waits_at_least_what_the_error_asks_for_up_to_a_cap() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0)
    assert backoff.failed(Flaky(retry_after=7)) == 7
    assert backoff.failed(Flaky(retry_after=10_000)) == RETRY_AFTER_CAP
    assert backoff.failed(Flaky()) <= 1.0


def test_retry_call_retries_what_it_should_and_returns_the_value() -> None:
    calls = []

    def fn() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Flaky()
        return "ok"

    seen: list[float] = []
    result = retry_call(
        fn,
        should_retry=lambda e: isinstance(e, Flaky),
        attempts=5,
        initial=0.01,
        on_retry=lambda e, delay: seen.append(delay),
    )
    assert result == "ok" and len(calls) == 3 and len(seen) == 2


def test_retry_call_raises_other_errors_at_once_and_the_last_error_when_attempts_run_out() -> None:
    calls = []

    def wrong() -> None:
        calls.append(1)
        raise KeyError("no")

    with pytest.raises(KeyError):
        retry_call(wrong, should_retry=lambda e: isinstance(e, Flaky), attempts=5)
    assert len(calls) == 1

    def always() -> None:
        calls.append(1)
        raise Flaky()

    calls.clear()
    with pytest.raises(Flaky):
        retry_call(always, should_retry=lambda e: True, attempts=3, initial=0.01)
    assert len(calls) == 3


def test_retry_call_stops_when_its_time_is_up() -> None:
    calls = []

    def always() -> None:
        calls.append(time.monotonic())
        raise Flaky()

    with pytest.raises(Flaky):
        retry_call(always, should_retry=lambda e: True, timeout=0.3, initial=0.05, maximum=0.05)
    assert calls[-1] - calls[0] <= 0.3 + 0.1  # no attempt starts after the time is up
    assert len(calls) >= 2


def test_a_stop_event_cuts_the_wait_short_and_ends_the_retries() -> None:
    stop = threading.Event()
    calls = []

    def always() -> None:
        calls.append(1)
        raise Flaky(retry_after=30)

    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Flaky):
        retry_call(always, should_retry=lambda e: True, stop=stop)
    assert time.monotonic() - started < 10  # woken, not after the 30 s Retry-After
    assert len(calls) == 1
