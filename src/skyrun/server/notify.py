"""Wakes long-polling claims when runs may have become claimable."""

from __future__ import annotations

import asyncio
import contextlib


class RunNotifier:
    """An edge-triggered signal: `changed()` wakes every wait on an earlier `ticket()`.

    Take the ticket before looking at the database and wait on it after: a
    change made in between is not missed. It is woken by this process's
    transactions (server/db/work_events.py) and, on PostgreSQL, by every
    replica's through LISTEN (server/db/listen.py); on SQLite other processes
    reach it not at all, so waiters there re-check the database often.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def changed(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def ticket(self) -> asyncio.Event:
        """What to wait on for the changes made from now on."""
        return self._event

    async def wait(self, timeout: float, ticket: asyncio.Event | None = None) -> None:
        """Return at the first change since `ticket` (default: now), or after `timeout` seconds."""
        event = ticket or self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(timeout, 0.0))
