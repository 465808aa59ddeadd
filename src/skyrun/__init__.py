"""skyrun: write flows as plain Python functions, run them anywhere, watch every run.

    from skyrun import flow, task

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow(log_prints=True)
    def pipeline(n: int = 3) -> list[int]:
        return [double(i) for i in range(n)]

Only the SDK is imported here; the server, database and cloud libraries load
when something needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skyrun._version import __version__
from skyrun.sdk.flows import Flow, flow
from skyrun.sdk.futures import SkyrunFuture, unmapped
from skyrun.sdk.tasks import Task, task

if TYPE_CHECKING:
    import logging


def get_run_logger() -> logging.Logger:
    """The logger of the current flow run or task run (see skyrun.sdk.logging)."""
    from skyrun.sdk.logging import get_run_logger as _get_run_logger

    return _get_run_logger()


def __getattr__(name: str) -> Any:
    raise AttributeError(f"module 'skyrun' has no attribute {name!r}")


__all__ = [
    "Flow",
    "SkyrunFuture",
    "Task",
    "__version__",
    "flow",
    "get_run_logger",
    "task",
    "unmapped",
]
