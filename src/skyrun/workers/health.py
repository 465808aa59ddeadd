"""`--with-healthcheck`: GET /health answers 200 while the worker's polling succeeds.

A worker deployed as a Cloud Run service must answer health checks on $PORT (Cloud
Run sets it, 8080 unless told otherwise, and probes `/` by TCP or HTTP, so `/` answers
as `/health` does); it reports unhealthy (503) once its last successful poll is too
old, so the platform restarts a worker that lost its server.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

logger = logging.getLogger("skyrun.worker")

DEFAULT_PORT = 8080
MIN_THRESHOLD_SECONDS = 30.0


class HealthCheckError(Exception):
    """The health check cannot be served (a bad $PORT, or the port is taken)."""


def healthcheck_port(environ: Mapping[str, str] | None = None) -> int:
    """The port the health check listens on: $PORT when set, else 8080.

    Args:
        environ: The environment to read (default: this process's).

    Raises:
        HealthCheckError: PORT is set but is not a port number (1-65535).
    """
    value = (os.environ if environ is None else environ).get("PORT", "").strip()
    if not value:
        return DEFAULT_PORT
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise HealthCheckError(
            f"PORT={value!r} is not a port number (1-65535): the health check "
            f"(--with-healthcheck) listens on $PORT; set it to a free port or unset it for "
            f"{DEFAULT_PORT}"
        )
    return port


class PollHealth:
    """When the worker last polled its pool successfully, and whether that is recent enough."""

    def __init__(self, threshold_seconds: float) -> None:
        self.threshold_seconds = threshold_seconds
        # Counted from start-up, so a worker is healthy while it makes its first poll.
        self._last_poll = time.monotonic()
        self._lock = threading.Lock()

    def polled(self) -> None:
        with self._lock:
            self._last_poll = time.monotonic()

    def seconds_since_poll(self) -> float:
        with self._lock:
            return time.monotonic() - self._last_poll

    def healthy(self) -> bool:
        return self.seconds_since_poll() <= self.threshold_seconds


def default_threshold(poll_interval: float) -> float:
    return max(MIN_THRESHOLD_SECONDS, 3 * poll_interval)


def _handler(health: PollHealth) -> type[BaseHTTPRequestHandler]:
    class HealthHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0].rstrip("/") not in ("/health", ""):
                self.send_error(404, "only / and /health are served here")
                return
            ago = health.seconds_since_poll()
            ok = ago <= health.threshold_seconds
            body = json.dumps(
                {
                    "status": "ok" if ok else "unhealthy",
                    "seconds_since_last_poll": round(ago, 3),
                    "threshold_seconds": health.threshold_seconds,
                }
            ).encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # Probes come every few seconds: keep them out of the worker's output.
            logger.debug("health check: " + format, *args)

    return HealthHandler


class HealthServer:
    """Serves GET /health in a daemon thread."""

    def __init__(self, health: PollHealth, port: int, host: str = "0.0.0.0") -> None:
        """Bind the port now, so a taken port stops the worker before it claims anything.

        Raises:
            HealthCheckError: The port cannot be bound (in use, or not allowed).
        """
        try:
            self._server = ThreadingHTTPServer((host, port), _handler(health))
        except OSError as exc:
            raise HealthCheckError(
                f"cannot serve the health check on {host}:{port} ({exc.strerror or exc}); "
                "set PORT to a free port"
            ) from exc
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="skyrun-worker-health", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        logger.info("Health check on http://0.0.0.0:%d/health", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
