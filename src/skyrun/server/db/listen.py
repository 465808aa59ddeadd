"""LISTEN on PostgreSQL: wake this process's waiting claims when any replica NOTIFYs.

One dedicated asyncpg connection per `Database` (outside the engine's pool,
which would hand it to requests) listens on `dialect.WORK_CHANNEL`; each
notification calls `RunNotifier.changed()`. When the connection is lost it
reconnects with the shared backoff; meanwhile `connected` is False and waiting
claims re-check the database as often as they do on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.engine import make_url

from skyrun.retries import Backoff
from skyrun.server.db.dialect import WORK_CHANNEL
from skyrun.server.notify import RunNotifier

logger = logging.getLogger("skyrun.server.listen")


def asyncpg_dsn(url: str) -> str:
    """The libpq-style DSN asyncpg takes, for a SQLAlchemy `postgresql+asyncpg://` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class WorkListener:
    """Keeps one LISTEN connection open while started; `connected` says whether it is now."""

    def __init__(self, url: str, notifier: RunNotifier) -> None:
        self._dsn = asyncpg_dsn(url)
        self._notifier = notifier
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._lost = asyncio.Event()
        self.connected = False

    async def start(self, timeout: float = 5.0) -> bool:
        """Start listening (once); wait up to `timeout` for the first connection."""
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="skyrun-work-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self.connected

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.connected = False

    async def _run(self) -> None:
        # Imported here, not at the top: only a server on PostgreSQL listens.
        import asyncpg

        backoff = Backoff(initial=0.5, maximum=5.0)
        while True:
            connection: Any = None
            try:
                connection = await asyncpg.connect(self._dsn, timeout=10)
                self._lost = asyncio.Event()
                connection.add_termination_listener(lambda _c: self._lost.set())
                await connection.add_listener(WORK_CHANNEL, self._notified)
                self.connected = True
                self._ready.set()
                backoff.succeeded()
                # What changed while nobody listened is found by the waiters' next look.
                self._notifier.changed()
                await self._lost.wait()
                logger.warning("lost the LISTEN connection to PostgreSQL; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.failed(exc)
                logger.warning("cannot LISTEN on PostgreSQL (%s); retrying in %.1fs", exc, delay)
                self._ready.set()  # start() need not wait for a connection that failed
                await asyncio.sleep(delay)
            finally:
                self.connected = False
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=5)

    def _notified(self, *_args: Any) -> None:
        self._notifier.changed()
