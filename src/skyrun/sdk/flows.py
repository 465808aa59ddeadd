"""@flow: a function whose every call is a recorded, orchestrated flow run."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

if TYPE_CHECKING:
    import uuid
    from datetime import timedelta

    from skyrun.sdk.parameters import ParameterModel

P = ParamSpec("P")
R = TypeVar("R")


class Flow(Generic[P, R]):
    """A decorated flow function. Calling it runs it as a flow run and returns its value."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        retries: int = 0,
        retry_delay_seconds: float = 0.0,
        timeout_seconds: float | None = None,
        log_prints: bool = False,
        tags: Iterable[str] = (),
        task_runner_max_workers: int | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("@flow must decorate a function")
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.fn = fn
        self.name = name or fn.__name__.replace("_", "-")
        self.description = description or inspect.getdoc(fn)
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        self.tags = list(tags)
        self.task_runner_max_workers = task_runner_max_workers
        self.is_async = inspect.iscoroutinefunction(fn)
        self._parameters: ParameterModel | None = None
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__wrapped__ = fn

    @property
    def parameters(self) -> ParameterModel:
        """The flow's parameter model (built on first use: it needs pydantic)."""
        if self._parameters is None:
            from skyrun.sdk.parameters import ParameterModel

            self._parameters = ParameterModel(self.fn)
        return self._parameters

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        # Deferred import: the engine pulls in the client; `import skyrun` stays light.
        from skyrun.sdk import flow_engine

        if self.is_async:
            return flow_engine.run_flow_async(self, args, kwargs)  # type: ignore[return-value]
        return flow_engine.run_flow(self, args, kwargs)

    def with_options(self, **options: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed."""
        current: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "timeout_seconds": self.timeout_seconds,
            "log_prints": self.log_prints,
            "tags": self.tags,
            "task_runner_max_workers": self.task_runner_max_workers,
        }
        current.update(options)
        return Flow(self.fn, **current)

    def deploy(
        self,
        name: str,
        work_pool_name: str | None = None,
        work_queue_name: str | None = None,
        job_variables: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        cron: str | None = None,
        interval: float | timedelta | None = None,
        rrule: str | None = None,
        timezone: str | None = None,
        tags: list[str] | None = None,
        description: str | None = None,
        version: str | None = None,
        paused: bool = False,
        concurrency_limit: int | None = None,
    ) -> uuid.UUID:
        """Register (create or replace) a deployment of this flow; returns its id.

        The entrypoint is this flow's source file, relative to the working directory,
        and its name (`flows/etl.py:etl`); the run's process starts in this directory.

        Args:
            name: the deployment's name; it is run as `skyrun deployment run FLOW/NAME`.
            work_pool_name: the work pool whose workers run it (None: serve it yourself).
            work_queue_name: the pool's queue (default: the pool's default queue).
            job_variables: override the pool's job variables for this deployment.
            parameters: default parameters, validated against the flow's signature.
            cron: a cron schedule, e.g. "0 9 * * *".
            interval: a schedule every so many seconds (or a timedelta).
            rrule: an RFC 5545 recurrence rule schedule.
            timezone: the schedules' time zone (default UTC).
            tags: tags for the deployment and its runs.
            description: shown in the UI (default: the flow's description).
            version: a label for this version of the deployment.
            paused: register it with its schedules paused.
            concurrency_limit: at most this many of its runs active (PENDING, RUNNING or
                CANCELLING) at once; runs beyond it wait SCHEDULED, in order (None: no
                limit; 0: none start). Needs a work pool.

        Raises:
            DeploymentError: The flow, parameters or schedule cannot be deployed as asked.
        """
        # Deferred import: deploying needs the client; `import skyrun` stays light.
        from skyrun.sdk.deploy import deploy_flow

        return deploy_flow(
            self,
            name,
            work_pool_name=work_pool_name,
            work_queue_name=work_queue_name,
            job_variables=job_variables,
            parameters=parameters,
            cron=cron,
            interval=interval,
            rrule=rrule,
            timezone=timezone,
            tags=tags,
            description=description,
            version=version,
            paused=paused,
            concurrency_limit=concurrency_limit,
        )

    def serve(
        self,
        name: str,
        cron: str | None = None,
        interval: float | timedelta | None = None,
        rrule: str | None = None,
        parameters: dict[str, Any] | None = None,
        limit: int | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        """Register a deployment without a work pool and run its runs here until Ctrl-C.

        Every `poll_seconds`, due runs of the deployment (from its schedule or from
        `skyrun deployment run FLOW/NAME`) are claimed and each executed in a child
        process, at most `limit` at once.
        """
        # Deferred import: serving needs the client; `import skyrun` stays light.
        from skyrun.sdk.serve import serve_flow

        serve_flow(
            self,
            name,
            cron=cron,
            interval=interval,
            rrule=rrule,
            parameters=parameters,
            limit=limit,
            poll_seconds=poll_seconds,
        )

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"


@overload
def flow(__fn: Callable[P, R]) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = None,
    description: str | None = None,
    retries: int = 0,
    retry_delay_seconds: float = 0.0,
    timeout_seconds: float | None = None,
    log_prints: bool = False,
    tags: Iterable[str] = (),
    task_runner_max_workers: int | None = None,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(__fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Make a function a flow: `@flow` or `@flow(name=..., retries=...)`.

    Args:
        name: the flow's name (default: the function's name, '_' as '-').
        description: shown in the UI (default: the docstring).
        retries: how many times to retry a failed run, in the same process.
        retry_delay_seconds: wait between retries.
        timeout_seconds: fail the run (TimedOut) if it takes longer.
        log_prints: send print() output to the run's logs.
        tags: labels recorded on every run.
        task_runner_max_workers: threads for `.submit()`/`.map()` (default: cores + 4).
    """
    kwargs: dict[str, Any] = options
    if __fn is not None:
        return Flow(__fn, **kwargs)
    return lambda fn: Flow(fn, **kwargs)
