"""Forward a flow run process's output to the worker's stdout and to the run's logs."""

from __future__ import annotations

import logging
import re
import sys
import threading
import uuid
from typing import IO, Any

from skyrun.client.client import SkyrunClient
from skyrun.schemas.states import utcnow

logger = logging.getLogger("skyrun.worker")

LOG_NAME = "skyrun.worker"
INFO = 20
FLUSH_SECONDS = 0.5
MAX_BATCH = 200
MAX_LINE = 10_000
# Lines the flow's own skyrun loggers print ("12:00:01.123 | INFO    | ..."): the
# SDK already sends them to the run's logs, so they are only echoed, not resent.
_SDK_CONSOLE_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| [A-Z]+ *\| ")
_stdout_lock = threading.Lock()


class OutputForwarder:
    """Reads a pipe line by line; echoes each line and batches it to the API as a log."""

    def __init__(self, client: SkyrunClient, flow_run_id: uuid.UUID, pipe: IO[bytes]) -> None:
        self.client = client
        self.flow_run_id = flow_run_id
        self.pipe = pipe
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._read, name="skyrun-output", daemon=True)
        self._flusher = threading.Thread(target=self._flush_loop, name="skyrun-logs", daemon=True)
        self._warned = False

    def start(self) -> None:
        self._reader.start()
        self._flusher.start()

    def join(self, timeout: float) -> None:
        """Wait for the pipe to close (or `timeout`) and send what is left."""
        self._reader.join(timeout)
        self._done.set()
        self._flusher.join(timeout)

    def _read(self) -> None:
        try:
            for raw in iter(self.pipe.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                with _stdout_lock:
                    sys.stdout.write(line + "\n")
                    sys.stdout.flush()
                if _SDK_CONSOLE_LINE.match(line):
                    continue
                self._add(line[:MAX_LINE])
        except (OSError, ValueError):
            pass  # the pipe was closed under us: the process is gone
        finally:
            self._done.set()

    def _add(self, line: str) -> None:
        entry = {
            "flow_run_id": str(self.flow_run_id),
            "name": LOG_NAME,
            "level": INFO,
            "message": line,
            "timestamp": utcnow().isoformat(),
        }
        with self._lock:
            self._pending.append(entry)

    def _flush_loop(self) -> None:
        while not self._done.wait(FLUSH_SECONDS):
            self._flush()
        self._flush()

    def _flush(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            if not batch:
                return
            try:
                self.client.request("POST", "logs", json=batch)
            except Exception as exc:
                if not self._warned:
                    self._warned = True
                    logger.warning(
                        "Flow run %s: could not send its output: %s", self.flow_run_id, exc
                    )
