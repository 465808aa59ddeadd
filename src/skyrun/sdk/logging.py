"""Run loggers: lines go to the console and, linked to their run, to the API."""

from __future__ import annotations

import builtins
import logging
import sys
import threading
from typing import Any

from skyrun.schemas.limits import MAX_LOG_MESSAGE_LENGTH
from skyrun.sdk.context import current_flow_run, current_task_run

_CUT = " [... cut: longer than the API's limit for a log line]"

_original_print = builtins.print
_print_patch_lock = threading.Lock()
_print_patched = False


class APILogHandler(logging.Handler):
    """Buffers records that carry a run id into the run's recorder."""

    def emit(self, record: logging.LogRecord) -> None:
        flow_run = current_flow_run()
        if flow_run is None:
            return
        task_run = current_task_run()
        try:
            message = self.format(record) if record.exc_info else record.getMessage()
        except Exception:
            message = str(record.msg)
        if len(message) > MAX_LOG_MESSAGE_LENGTH:
            # The API refuses longer lines; the console still gets the whole one.
            message = message[: MAX_LOG_MESSAGE_LENGTH - len(_CUT)] + _CUT
        flow_run.recorder.add_log(
            flow_run_id=flow_run.flow_run_id,
            task_run_id=task_run.task_run_id if task_run else None,
            name=record.name,
            level=record.levelno,
            message=message,
            timestamp=record.created,
        )


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        task_run = current_task_run()
        flow_run = current_flow_run()
        if task_run is not None:
            who = f"Task run {task_run.task_run_name!r}"
        elif flow_run is not None:
            who = f"Flow run {flow_run.flow_run_name!r}"
        else:
            who = record.name
        self._style._fmt = f"%(asctime)s.%(msecs)03d | %(levelname)-7s | {who} - %(message)s"
        line = super().format(record)
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (a non-UTF-8 file name) is shown as its escape, as
            # Python's stderr would write it, so whatever captures the console
            # (a log file, a test runner) gets valid text.
            line = line.encode("utf-8", "backslashreplace").decode("utf-8")
        return line


_configured = False


def configure_logging(level: str = "INFO") -> None:
    """Attach the console and API handlers to the `skyrun` logger (once per process)."""
    global _configured
    if _configured:
        return
    _configured = True
    root = logging.getLogger("skyrun")
    root.setLevel(level.upper())
    root.propagate = False
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(_ConsoleFormatter(datefmt="%H:%M:%S"))
    root.addHandler(console)
    root.addHandler(APILogHandler())


def get_run_logger() -> logging.Logger:
    """The logger of the current flow run or task run.

    Its lines show on the console and are stored with the run (see
    `skyrun flow-run logs`). Raises RuntimeError outside a run.
    """
    if current_task_run() is not None:
        return logging.getLogger("skyrun.task_runs")
    if current_flow_run() is not None:
        return logging.getLogger("skyrun.flow_runs")
    raise RuntimeError(
        "get_run_logger() was called outside a flow or task run; "
        "call it inside a function decorated with @flow or @task"
    )


def _printing(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    task_run = current_task_run()
    flow_run = current_flow_run()
    active = (
        task_run.log_prints
        if task_run is not None
        else (flow_run.log_prints if flow_run else False)
    )
    if not active or file not in (None, sys.stdout):
        _original_print(*args, sep=sep, end=end, file=file, flush=flush)
        return
    message = (sep if sep is not None else " ").join(str(a) for a in args)
    get_run_logger().info(message)


def enable_log_prints() -> None:
    """Route print() to the run logger wherever the current run has log_prints set.

    Installed once per process; runs without log_prints print as usual.
    """
    global _print_patched
    with _print_patch_lock:
        if not _print_patched:
            builtins.print = _printing
            _print_patched = True
