"""Task runners: where submitted task runs execute. The default is a thread pool."""

from __future__ import annotations

import concurrent.futures
import contextvars
import os
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")


class ThreadPoolTaskRunner:
    """Runs submitted task runs on a thread pool, each in a copy of the caller's context."""

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def submit(
        self, fn: Callable[..., R], *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[R]:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self.max_workers, thread_name_prefix="skyrun-task"
            )
        context = contextvars.copy_context()
        return self._pool.submit(context.run, fn, *args, **kwargs)

    def shutdown(self) -> None:
        """Wait for every submitted run, then release the threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
