"""Futures returned by `task.submit()` and `task.map()`."""

from __future__ import annotations

import concurrent.futures
import uuid
from typing import Any, Generic, TypeVar

R = TypeVar("R")


class SkyrunFuture(Generic[R]):
    """The eventual result of a submitted task run."""

    def __init__(self, future: concurrent.futures.Future[R], task_run_id: uuid.UUID) -> None:
        self._future = future
        self.task_run_id = task_run_id

    def result(self, timeout: float | None = None) -> R:
        """Wait for the task run and return its value (or raise its exception)."""
        return self._future.result(timeout)

    def wait(self, timeout: float | None = None) -> None:
        concurrent.futures.wait([self._future], timeout=timeout)

    def done(self) -> bool:
        return self._future.done()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._future.exception(timeout)

    def __repr__(self) -> str:
        return f"SkyrunFuture(task_run_id={self.task_run_id}, done={self.done()})"


class FutureList(list[SkyrunFuture[R]]):
    """The futures of `task.map()`; `.result()` gathers every value in order."""

    def result(self, timeout: float | None = None) -> list[R]:
        return [f.result(timeout) for f in self]

    def wait(self, timeout: float | None = None) -> None:
        concurrent.futures.wait([f._future for f in self], timeout=timeout)


class unmapped(Generic[R]):
    """Pass the same value to every call of `task.map()`."""

    def __init__(self, value: R) -> None:
        self.value = value


def resolve_futures(value: Any) -> Any:
    """Replace futures (also inside lists, tuples, sets and dicts) by their results."""
    if isinstance(value, SkyrunFuture):
        return value.result()
    if isinstance(value, list | tuple | set):
        if not any(isinstance(v, SkyrunFuture | list | tuple | dict) for v in value):
            return value
        return type(value)(resolve_futures(v) for v in value)
    if isinstance(value, dict):
        return {k: resolve_futures(v) for k, v in value.items()}
    return value
