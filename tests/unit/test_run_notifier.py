"""RunNotifier: what wakes a long-polling claim as soon as a run may have become due."""

from __future__ import annotations

import asyncio

from skyrun.server.notify import RunNotifier

# A guard against a waiter that is never woken, far below the waits themselves.
WAKE_TIMEOUT = 5.0
LONG_WAIT = 60.0


async def test_changed_wakes_every_current_waiter_before_its_timeout() -> None:
    notifier = RunNotifier()
    waiters = [asyncio.create_task(notifier.wait(LONG_WAIT)) for _ in range(3)]
    await asyncio.sleep(0)  # let each waiter start waiting
    assert not any(waiter.done() for waiter in waiters)
    notifier.changed()
    await asyncio.wait_for(asyncio.gather(*waiters), WAKE_TIMEOUT)


async def test_a_later_wait_needs_a_new_change() -> None:
    notifier = RunNotifier()
    notifier.changed()  # edge-triggered: a change with nobody waiting is not kept
    waiter = asyncio.create_task(notifier.wait(LONG_WAIT))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    notifier.changed()
    await asyncio.wait_for(waiter, WAKE_TIMEOUT)


async def test_a_wait_without_a_change_ends_at_its_timeout() -> None:
    await asyncio.wait_for(RunNotifier().wait(0.01), WAKE_TIMEOUT)
