"""Wakes long-polling workers when a run may have become due in this process."""

from __future__ import annotations

import asyncio


class RunNotifier:
    """An edge-triggered signal: `changed()` wakes every current `wait()`.

    Other server replicas (or embedded processes) do not reach it, so waiters
    also re-check the database on a short interval.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def changed(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
