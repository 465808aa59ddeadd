"""Forward a flow run process's output to the worker's stdout and to the run's logs.

The lines go to the run's logs through the worker's recorder (sdk/recorder.py),
so they have the SDK's guarantees: batched, each batch recorded once, kept
while the server is away and spooled if the worker exits before it is back.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import uuid
from typing import IO

from skyrun.client.client import SkyrunClient
from skyrun.sdk.recorder import recorder_for

LOG_NAME = "skyrun.worker"
INFO = 20
MAX_LINE = 10_000
# Lines the flow's own skyrun loggers print ("12:00:01.123 | INFO    | ..."): the
# SDK already sends them to the run's logs, so they are only echoed, not resent.
_SDK_CONSOLE_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| [A-Z]+ *\| ")
_stdout_lock = threading.Lock()


class OutputForwarder:
    """Reads a pipe line by line; echoes each line and records it as a log of the run."""

    def __init__(self, client: SkyrunClient, flow_run_id: uuid.UUID, pipe: IO[bytes]) -> None:
        self.flow_run_id = flow_run_id
        self.pipe = pipe
        self.recorder = recorder_for(client, client.settings.flush_interval)
        self._reader = threading.Thread(target=self._read, name="skyrun-output", daemon=True)

    def start(self) -> None:
        self._reader.start()

    def join(self, timeout: float) -> None:
        """Wait for the pipe to close (or `timeout`), then send what is buffered.

        One try: what the server does not take now stays with the recorder,
        which keeps sending it in the background.
        """
        self._reader.join(timeout)
        self.recorder.send_buffered()

    def _read(self) -> None:
        try:
            for raw in iter(self.pipe.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                with _stdout_lock:
                    sys.stdout.write(line + "\n")
                    sys.stdout.flush()
                if _SDK_CONSOLE_LINE.match(line):
                    continue
                self.recorder.add_log(
                    flow_run_id=self.flow_run_id,
                    task_run_id=None,
                    name=LOG_NAME,
                    level=INFO,
                    message=line[:MAX_LINE],
                    timestamp=time.time(),
                )
        except (OSError, ValueError):
            pass  # the pipe was closed under us: the process is gone
