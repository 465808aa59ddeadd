"""The embedded backend: the server's own ASGI app, called in-process.

With no SKYRUN_API_URL, the SDK and CLI talk to `create_app` running on a
private event loop in a daemon thread, against SQLite under SKYRUN_HOME. Every
request goes through the same routes, validation and orchestration rules as a
real server; only the socket is missing, and so is any HTTP library: a request
is handed to the app as an ASGI call. (Loaded lazily: it imports the server.)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import quote

from skyrun.client.transport import ApiRequest, Response, TransportError
from skyrun.server.app import create_app
from skyrun.server.db.engine import Database
from skyrun.settings import Settings

_ASGI_SCOPE_BASE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "scheme": "http",
    "root_path": "",
    "server": ("embedded", 80),
    "client": ("127.0.0.1", 0),
}


class EmbeddedTransport:
    """Sends each request to the in-process app on the backend's event loop."""

    def __init__(self, settings: Settings) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="skyrun-embedded", daemon=True
        )
        self._thread.start()
        self.database = Database.from_settings(settings)
        # No API keys in-process: whoever opens the database can do anything anyway,
        # and this is how the first admin key of a server is made.
        self._app = create_app(
            settings,
            database=self.database,
            run_services=False,
            work_routes_on_demand=True,
            require_api_keys=False,
        )
        self._run(self.database.migrate())
        self._closed = False
        self._settings = settings
        self._services: list[asyncio.Task[None]] = []
        # aiosqlite keeps non-daemon threads per connection: dispose them before
        # the interpreter joins threads at exit, or a finished script would hang.
        threading._register_atexit(self.close)  # type: ignore[attr-defined]

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def send(self, request: ApiRequest) -> Response:
        # The timeout is not applied: the app runs in this process, and a long-poll
        # claim waits on purpose. (Over HTTP it guards against a lost server.)
        if self._closed:
            raise TransportError("the embedded skyrun backend is closed", maybe_sent=False)
        return self._run(self._call(request))

    async def _call(self, request: ApiRequest) -> Response:
        path = "/api/" + request.path
        body = request.body or b""
        scope = {
            **_ASGI_SCOPE_BASE,
            "method": request.method,
            "path": path,
            "raw_path": quote(path).encode(),
            "query_string": request.query.encode(),
            "headers": [(b"host", b"embedded")]
            + [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in request.headers.items()
            ],
        }
        status = 500
        headers: dict[str, str] = {}
        chunks: list[bytes] = []
        done = asyncio.Event()
        request_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()  # the client "disconnects" only once it has its answer
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.update(
                    (k.decode("latin-1").lower(), v.decode("latin-1"))
                    for k, v in message.get("headers", ())
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        # An exception the app does not turn into a response propagates to the
        # caller, with its traceback: in-process, that is the most useful answer.
        await self._app(scope, receive, send)
        return Response(status, b"".join(chunks), headers)

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
            self._run(self.database.dispose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self._loop.close()
