"""The embedded backend: the server's own app, served in-process over a sync transport.

With no SKYRUN_API_URL, the SDK and CLI talk to `create_app` running on a
private event loop in a daemon thread, against SQLite under SKYRUN_HOME. Every
request goes through the same routes, validation and orchestration rules as a
real server; only the socket is missing. (Loaded lazily: it imports the server.)
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx

from skyrun.server.app import create_app
from skyrun.server.db.engine import Database
from skyrun.settings import Settings


class EmbeddedTransport(httpx.BaseTransport):
    """An httpx transport that dispatches requests to the in-process ASGI app."""

    def __init__(self, settings: Settings) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="skyrun-embedded", daemon=True
        )
        self._thread.start()
        self.database = Database(settings.resolved_database_url)
        app = create_app(settings, database=self.database, run_services=False)
        self._run(self.database.migrate())
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://embedded"
        )
        self._closed = False
        self._settings = settings
        self._services: list[asyncio.Task[None]] = []
        # aiosqlite keeps non-daemon threads per connection: dispose them before
        # the interpreter joins threads at exit, or a finished script would hang.
        threading._register_atexit(self.close)  # type: ignore[attr-defined]

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("the embedded skyrun backend is closed")
        body = request.read()
        response = self._run(
            self._client.request(
                request.method, str(request.url), headers=request.headers, content=body
            )
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )

    def start_services(self) -> None:
        """Run the server's background services (scheduler, housekeeping) on this loop.

        For long-lived embedded processes (a worker, `flow.serve()`): with no
        server, nothing else would schedule runs or notice dead workers. Every
        service is safe to run in several processes at once.
        """
        if self._services or self._closed:
            return
        # Imported here: a process that only runs flows never loads the scheduler.
        from skyrun.server.app import server_services
        from skyrun.server.services.loops import start_services

        async def start() -> list[asyncio.Task[None]]:
            return start_services(server_services(self._settings), self.database)

        self._services = self._run(start())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._services:
                from skyrun.server.services.loops import stop_services

                self._run(stop_services(self._services))
            self._run(self._client.aclose())
            self._run(self.database.dispose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self._loop.close()
