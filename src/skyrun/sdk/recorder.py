"""Buffers task-run states and log lines, and sends them to the API in batches; drops none.

A task run costs no API round trip: its states are appended here and sent
every `flush_interval` seconds by a background thread (`send_buffered`), and
when a flow run ends (before its final state) and at interpreter exit
(`flush`). Workers send the output of the flow runs they launch through one
too (workers/output.py).

Nothing is lost on the way:

* every request carries its own Idempotency-Key, and a batch that got no
  answer (a lost connection, a 5xx after the client's retries) is kept whole
  and sent again, first and unchanged, under the same key, so a batch that did
  arrive is not recorded twice;
* the server records each record on its own and names the ones it refused (an
  unknown flow run, an invalid record): only those are dropped, with one
  warning;
* `flush` keeps retrying with backoff for SKYRUN_RECORDER_FLUSH_TIMEOUT seconds,
  then saves what is left to a spool file (sdk/spool.py) and says so in one
  line; the next recorder that starts against the same API sends it.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from skyrun.client.base import CALLER_RETRIES
from skyrun.client.errors import SkyrunAPIError
from skyrun.sdk import spool
from skyrun.sdk.task_records import Taken, TaskRecord, payload

if TYPE_CHECKING:
    from skyrun.client.client import SkyrunClient

# Per request, to bound the memory a large flush takes on both sides: task runs,
# log lines, and the characters of those lines' messages.
BATCH_SIZE = 200
LOG_BATCH_SIZE = 1000
LOG_BATCH_CHARACTERS = 1_000_000
# Answers that a repeat can change: the server was busy or raced (408, 409, 425, 429).
_TRANSIENT_CLIENT_ERRORS = frozenset({408, 409, 425, 429})


class PreparedBatch(NamedTuple):
    """One request, built once: sent again, unchanged and under its key, until answered."""

    key: str
    body: dict[str, Any]


def worth_retrying(error: BaseException) -> bool:
    """Whether sending again may work: not after an answer a repeat gets again (most 4xx)."""
    if isinstance(error, SkyrunAPIError):
        status = error.status_code
        return not 400 <= status < 500 or status in _TRANSIENT_CLIENT_ERRORS
    return True


def _warn(message: str) -> None:
    print(f"skyrun: {message}", file=sys.stderr, flush=True)


class Recorder:
    """The process's buffer of task runs and logs for one client."""

    def __init__(
        self, client: SkyrunClient, flush_interval: float, flush_timeout: float | None = None
    ) -> None:
        self.client = client
        self.flush_interval = flush_interval
        self.flush_timeout = (
            client.settings.recorder_flush_timeout if flush_timeout is None else flush_timeout
        )
        self._lock = threading.Lock()  # the buffer below, written by every thread
        self._dirty: dict[str, TaskRecord] = {}
        self._logs: list[dict[str, Any]] = []
        # One sender at a time; it owns what follows. Sent in this order:
        self._flush_lock = threading.Lock()
        self._pending: deque[PreparedBatch] = deque()  # built, not answered yet
        self._unsent: list[Taken] = []  # taken from the buffer, not in a batch yet
        self._unsent_logs: list[dict[str, Any]] = []
        self._failing = False  # the last request got no answer (said once until one does)
        self._gave_up = False  # the last flush ran out of time: the next tries once
        self._deadline: float | None = None  # when a flush's retries end (monotonic)
        self._spool_due = True  # send spooled batches, at start and once the API is back
        self._spool_waiting = False
        self._spool_warned: set[Path] = set()
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="skyrun-recorder", daemon=True)
        self._thread.start()
        # Runs before the embedded backend closes (registered later hooks run first).
        threading._register_atexit(self.close)  # type: ignore[attr-defined]

    # -- buffering (any thread) -------------------------------------------------
    def add_state(
        self, record: TaskRecord, state_type: str, name: str, message: str | None = None
    ) -> float:
        """Append a state to a task run; returns its timestamp."""
        now = time.time()
        with self._lock:
            if record.running_since is not None:
                record.total_run_time += now - record.running_since
                record.running_since = None
            if state_type == "RUNNING":
                record.run_count += 1
                record.running_since = now
                if record.start_time is None:
                    record.start_time = now
            elif state_type in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                record.end_time = now
            record.new_states.append((state_type, name, now, message))
            self._dirty[record.id] = record
        return now

    def add_log(
        self,
        *,
        flow_run_id: uuid.UUID | str | None,
        task_run_id: uuid.UUID | str | None,
        name: str,
        level: int,
        message: str,
        timestamp: float,
    ) -> None:
        entry = {
            "flow_run_id": str(flow_run_id) if flow_run_id else None,
            "task_run_id": str(task_run_id) if task_run_id else None,
            "name": name,
            "level": level,
            "message": message,
            "timestamp": timestamp,
        }
        with self._lock:
            self._logs.append(entry)

    # -- sending ------------------------------------------------------------------
    def send_buffered(self) -> bool:
        """Send everything buffered now, one try per batch; what got no answer is kept.

        Returns whether everything was sent.
        """
        try:
            self._send_all()
        except Exception as exc:
            self._kept(exc)
            return False
        return True

    def flush(self) -> None:
        """Send everything buffered now, retrying for up to `flush_timeout` seconds.

        What is still unsent then goes to the spool, said in one line. Never
        raises: a flow run's end must go on to report its final state.
        """
        try:
            self._send_all()
            return
        except Exception as exc:
            error: BaseException = exc
        if not self._gave_up and self.flush_timeout > 0 and worth_retrying(error):
            # Said once, when it is known how this ends (sent, or spooled).
            self._failing = True
            try:
                self._retry_until_sent()
                return
            except Exception as exc:
                error = exc
        self._give_up(error)

    def _retry_until_sent(self) -> None:
        # Imported here: tenacity is loaded only when a flush has failed.
        from skyrun.retries import retry_call

        self._deadline = time.monotonic() + self.flush_timeout
        try:
            retry_call(
                self._send_all,
                should_retry=worth_retrying,
                timeout=self.flush_timeout,
                initial=0.5,
                maximum=5.0,
            )
        finally:
            self._deadline = None

    def _send_all(self) -> None:
        """Send the buffer, batch by batch; raise at the first batch not sent (it stays first)."""
        with self._flush_lock:
            with self._lock:
                self._unsent += [record.take() for record in self._dirty.values()]
                self._dirty = {}
                self._unsent_logs += self._logs
                self._logs = []
            while (batch := self._next_batch()) is not None:
                self._send(batch.key, batch.body)
                self._pending.popleft()

    def _next_batch(self) -> PreparedBatch | None:
        """The batch to send next: one not answered yet, else a new one from what is unsent."""
        if self._pending:
            return self._pending[0]
        runs = self._unsent[:BATCH_SIZE]
        del self._unsent[:BATCH_SIZE]
        # Log lines go with the last task runs, after the runs they may name.
        lines = self._take_log_lines() if not self._unsent else []
        if not runs and not lines:
            return None
        body = {"task_runs": [payload(taken) for taken in runs], "logs": lines}
        self._pending.append(PreparedBatch(uuid.uuid4().hex, body))
        return self._pending[0]

    def _take_log_lines(self) -> list[dict[str, Any]]:
        count = characters = 0
        for line in self._unsent_logs:
            count += 1
            characters += len(line["message"])
            if count >= LOG_BATCH_SIZE or characters >= LOG_BATCH_CHARACTERS:
                break
        lines = self._unsent_logs[:count]
        del self._unsent_logs[:count]
        return lines

    def _send(self, key: str, body: dict[str, Any]) -> None:
        """One batch, once; raises when it was not recorded."""
        # In the background the recorder sends again at its next flush by itself.
        timeout: float | None = None
        retry_for = CALLER_RETRIES
        if self._deadline is not None:
            # A flush's retries end on time even against a server that never answers:
            # the client's own retries stop at the deadline too.
            remaining = self._deadline - time.monotonic()
            timeout = max(1.0, min(self.client.settings.client_timeout, remaining))
            retry_for = max(remaining, 0.0)
        # The key makes a repeat replay the first answer, so a lost reply is retried.
        response = self.client.request(
            "POST",
            "batch",
            json=body,
            headers={"Idempotency-Key": key},
            timeout=timeout,
            idempotent=True,
            retry_for=retry_for,
        )
        refused = response.json().get("refused") or []
        self._answered()
        if refused:
            self._warn_refused(body, refused)

    # -- saying what happened -------------------------------------------------------
    def _kept(self, error: BaseException) -> None:
        if not self._failing:
            self._failing = True
            _warn(
                f"could not send run records to {self.client.api_url} yet ({error}); "
                "they are kept and sent again"
            )

    def _answered(self) -> None:
        if self._failing or self._spool_waiting:
            self._spool_due = True  # the API is back: spooled batches can go too
        self._failing = False
        self._gave_up = False

    @staticmethod
    def _warn_refused(body: dict[str, Any], refused: list[dict[str, Any]]) -> None:
        first = refused[0]
        kind, index = first.get("kind"), first.get("index")
        items = body.get("task_runs" if kind == "task_run" else "logs") or []
        what = "a record"
        if isinstance(index, int) and 0 <= index < len(items):
            item = items[index]
            what = (
                f"task run {item.get('name')!r}"
                if kind == "task_run"
                else f"log line {str(item.get('message'))[:60]!r}"
            )
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        _warn(f"the API refused {what}{more}, which is dropped: {first.get('reason')}")

    # -- the spool ------------------------------------------------------------------
    def _give_up(self, error: BaseException) -> None:
        """Save every unsent batch to this process's spool file; say so once per file."""
        home = self.client.settings.home
        with self._flush_lock:
            batches = list(self._pending)
            self._pending.clear()
            while self._next_batch() is not None:
                batches.append(self._pending.popleft())
            if not batches:
                return
            try:
                path = spool.append(
                    home,
                    (spool.SpooledBatch(self.client.api_url, b.key, b.body) for b in batches),
                )
            except OSError as exc:
                self._pending.extend(batches)
                _warn(
                    f"could not send run records to {self.client.api_url} ({error}) nor save "
                    f"them under {spool.spool_dir(home)} ({exc}); they are lost if this "
                    "process ends before the API answers"
                )
                return
        self._gave_up = True
        self._failing = True
        if path not in self._spool_warned:
            self._spool_warned.add(path)
            _warn(
                f"could not send run records to {self.client.api_url} within "
                f"{self.flush_timeout:g}s ({error}); saved them to {path}: the next skyrun "
                "process that reaches that API sends them"
            )

    def _send_spooled(self) -> None:
        home = self.client.settings.home
        self._spool_due = False
        try:
            spool.send_spooled(home, self.client.api_url, self._send, _warn)
        except Exception as exc:
            # Tried again once this process's own records reach the API.
            self._spool_waiting = True
            if worth_retrying(exc):
                return
            _warn(f"could not send the run records spooled under {spool.spool_dir(home)}: {exc}")
            return
        self._spool_waiting = False
        self._spool_due = False

    # -- the background thread ------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopped:
            try:
                if self._spool_due:
                    self._send_spooled()
            except Exception as exc:  # never let the background thread die
                _warn(f"sending spooled run records failed: {exc!r}")
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stopped:
                break
            try:
                self.send_buffered()
            except Exception as exc:
                _warn(f"background flush failed: {exc!r}")

    def close(self) -> None:
        """Stop the background thread (letting a spool pass finish) and flush."""
        if self._stopped:
            return
        self._stopped = True
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(max(self.flush_timeout, 1.0))
        self.flush()


_recorders: dict[int, Recorder] = {}
_recorders_lock = threading.Lock()


def recorder_for(client: SkyrunClient, flush_interval: float) -> Recorder:
    """The process's one recorder for `client` (flow runs and a worker's output share it)."""
    with _recorders_lock:
        recorder = _recorders.get(id(client))
        if recorder is None:
            recorder = _recorders[id(client)] = Recorder(client, flush_interval)
        return recorder


def close_recorders() -> None:
    """Close every recorder of the process (tests start each from a clean process state)."""
    with _recorders_lock:
        recorders = list(_recorders.values())
        _recorders.clear()
    for recorder in recorders:
        recorder.close()
