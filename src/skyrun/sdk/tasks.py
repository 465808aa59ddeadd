"""@task: a function whose calls inside a flow are recorded as task runs."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from skyrun.sdk.futures import FutureList, SkyrunFuture, unmapped

P = ParamSpec("P")
R = TypeVar("R")


class Task(Generic[P, R]):
    """A decorated task function. Call it, `.submit()` it, or `.map()` it over inputs."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        retries: int = 0,
        retry_delay_seconds: float = 0.0,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        if not callable(fn):
            raise TypeError("@task must decorate a function")
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description or inspect.getdoc(fn)
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        self.tags = list(tags)
        self.task_key = f"{fn.__module__}.{fn.__qualname__}"
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__wrapped__ = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        # Deferred import: the engine pulls in the client; `import skyrun` stays light.
        from skyrun.sdk import task_engine

        return task_engine.call_task(self, args, kwargs)

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> SkyrunFuture[R]:
        """Run the task on the flow's task runner; returns a future at once."""
        from skyrun.sdk import task_engine

        return task_engine.submit_task(self, args, kwargs)

    def map(self, *args: Any, **kwargs: Any) -> FutureList[R]:
        """Submit one task run per element of the iterable arguments.

        Iterable arguments (lists, tuples, ranges, ...) are zipped; wrap a value
        in `unmapped(...)` to pass it unchanged to every run.
        """
        from skyrun.sdk import task_engine

        return task_engine.map_task(self, args, kwargs)

    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some options changed."""
        current: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "timeout_seconds": self.timeout_seconds,
            "log_prints": self.log_prints,
            "tags": self.tags,
        }
        current.update(options)
        return Task(self.fn, **current)

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"


@overload
def task(__fn: Callable[P, R]) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    description: str | None = None,
    retries: int = 0,
    retry_delay_seconds: float = 0.0,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    tags: Iterable[str] = (),
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(__fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Make a function a task: `@task` or `@task(retries=2, ...)`.

    Args:
        name: the task's name (default: the function's name).
        description: shown in the UI (default: the docstring).
        retries: how many times to retry a failed run.
        retry_delay_seconds: wait between retries.
        timeout_seconds: fail the run (TimedOut) if it takes longer.
        log_prints: send print() output to the run's logs (default: the flow's choice).
        tags: labels recorded on every run.
    """
    kwargs: dict[str, Any] = options
    if __fn is not None:
        return Task(__fn, **kwargs)
    return lambda fn: Task(fn, **kwargs)


__all__ = ["Task", "task", "unmapped"]
