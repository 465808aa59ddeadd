"""`flow.deploy()`: register a flow as a deployment.

`deploy_flow` upserts a deployment whose entrypoint is the flow's own source
file (relative to the working directory) and function name, with the flow's
parameter schema; the helpers here are shared with `flow.serve()` (serve.py).
(Imported by `Flow.deploy`/`Flow.serve` only: it needs the client.)
"""

from __future__ import annotations

import inspect
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import PydanticUserError, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from skyrun.client.client import SkyrunClient, get_client
from skyrun.client.errors import ObjectNotFound
from skyrun.schedules import accept_schedule
from skyrun.schemas.deployments import Deployment, DeploymentCreate, DeploymentScheduleCreate
from skyrun.sdk.flows import Flow
from skyrun.validation import job_variable_problems, parameter_problems


class DeploymentError(ValueError):
    """A flow cannot be deployed as asked; the message says what to change."""


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        # Each message names its field (`concurrency_limit: Input should be ...`).
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            if error["loc"]
            else str(error["msg"])
            for error in exc.errors()
        )
    return " ".join(str(exc).split())


# -- entrypoint -------------------------------------------------------------------


def _module_attribute(flow: Flow[Any, Any]) -> str:
    """The top-level name of the flow in its module (usually the function's name)."""
    fn = flow.fn
    if "<locals>" in fn.__qualname__ or "." in fn.__qualname__:
        raise DeploymentError(
            f"flow {flow.name!r} is defined inside {fn.__qualname__.rsplit('.', 1)[0]!r}; a "
            "deployed flow must be defined at the top level of its module"
        )
    module = sys.modules.get(fn.__module__)
    if module is None:
        return fn.__name__
    found = getattr(module, fn.__name__, None)
    if isinstance(found, Flow) and found.fn is fn:
        return fn.__name__
    for name, value in vars(module).items():
        if isinstance(value, Flow) and value.fn is fn and not name.startswith("_"):
            return name
    raise DeploymentError(
        f"flow {flow.name!r}: module {fn.__module__!r} has no top-level name holding it; "
        f"decorate the function with @flow, or assign the flow to a module-level name"
    )


def flow_entrypoint(flow: Flow[Any, Any], working_directory: Path) -> str:
    """`path/to/file.py:name`: the flow's source file relative to `working_directory`.

    Raises:
        DeploymentError: The flow has no source file (defined interactively) or is not
            reachable as a top-level name of its module.
    """
    try:
        source = inspect.getsourcefile(flow.fn)
    except TypeError:
        source = None
    if source is None or not os.path.isfile(source):
        where = flow.fn.__code__.co_filename
        raise DeploymentError(
            f"flow {flow.name!r} was defined in {where!r}, not in a Python file, so a worker "
            "could not import it; define the flow in a .py file and deploy it from there"
        )
    attribute = _module_attribute(flow)
    relative = Path(os.path.relpath(os.path.realpath(source), os.path.realpath(working_directory)))
    return f"{relative.as_posix()}:{attribute}"


# -- parameters and schedules ------------------------------------------------------


def parameter_schema(flow: Flow[Any, Any]) -> dict[str, Any]:
    """The flow's parameter JSON schema; it refuses unknown names unless the flow takes **kwargs."""
    try:
        schema = flow.parameters.json_schema()
    except PydanticUserError as exc:
        raise DeploymentError(
            f"flow {flow.name!r}: its parameters cannot be described as JSON schema "
            f"({_one_line(exc)}); give them JSON-compatible type hints"
        ) from exc
    takes_kwargs = any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        for p in flow.parameters.signature.parameters.values()
    )
    if not takes_kwargs:
        schema["additionalProperties"] = False
    return schema


def checked_parameters(
    flow: Flow[Any, Any], schema: dict[str, Any], parameters: dict[str, Any], need_all: bool
) -> dict[str, Any]:
    """`parameters` as JSON values, valid against `schema` (all required ones if `need_all`).

    Raises:
        DeploymentError: Naming each invalid, unknown or missing parameter.
    """
    try:
        values: dict[str, Any] = to_jsonable_python(parameters)
    except PydanticSerializationError as exc:
        raise DeploymentError(
            f"flow {flow.name!r}: parameters must be JSON values: {_one_line(exc)}"
        ) from exc
    problems = parameter_problems(
        schema, values, need_all=need_all, who_needs="scheduled runs need"
    )
    if problems:
        raise DeploymentError(f"flow {flow.name!r}: invalid parameters: {'; '.join(problems)}")
    return values


def schedules_for(
    cron: str | None,
    interval: float | timedelta | None,
    rrule: str | None,
    timezone: str | None,
) -> list[DeploymentScheduleCreate]:
    """One schedule per given kind, each in `timezone`, validated here for a clear error."""
    specs: list[dict[str, Any]] = []
    if cron is not None:
        specs.append({"cron": cron})
    if interval is not None:
        seconds = interval.total_seconds() if isinstance(interval, timedelta) else interval
        specs.append({"interval": seconds})
    if rrule is not None:
        specs.append({"rrule": rrule})
    if timezone is not None and not specs:
        raise DeploymentError("timezone= applies to a schedule: give cron=, interval= or rrule=")
    schedules = []
    for spec in specs:
        if timezone is not None:
            spec["timezone"] = timezone
        try:
            schedule = accept_schedule(spec)
        except ValueError as exc:
            raise DeploymentError(f"invalid schedule {spec}: {_one_line(exc)}") from exc
        schedules.append(DeploymentScheduleCreate(schedule=schedule.model_dump(mode="json")))
    return schedules


# -- deploy ------------------------------------------------------------------------


def deployment_create(
    flow: Flow[Any, Any],
    name: str,
    *,
    work_pool_name: str | None,
    work_queue_name: str | None,
    job_variables: dict[str, Any] | None,
    parameters: dict[str, Any] | None,
    schedules: list[DeploymentScheduleCreate],
    tags: list[str] | None,
    description: str | None,
    version: str | None,
    paused: bool,
    concurrency_limit: int | None = None,
) -> DeploymentCreate:
    """The deployment to register for `flow`, run from the current working directory.

    Raises:
        DeploymentError: The flow has no importable entrypoint, or a value is invalid.
    """
    if not isinstance(flow, Flow):
        raise DeploymentError(f"deploy() needs a skyrun flow, got {type(flow).__name__}")
    working_directory = Path.cwd()
    entrypoint = flow_entrypoint(flow, working_directory)
    schema = parameter_schema(flow)
    values = checked_parameters(flow, schema, parameters or {}, need_all=bool(schedules))
    try:
        return DeploymentCreate(
            flow_name=flow.name,
            name=name,
            entrypoint=entrypoint,
            path=str(working_directory),
            description=description or flow.description,
            version=version,
            parameters=values,
            parameter_openapi_schema=schema,
            tags=tags or [],
            work_pool_name=work_pool_name,
            work_queue_name=work_queue_name,
            job_variables=job_variables or {},
            pull_steps=[{"set_working_directory": {"directory": str(working_directory)}}],
            schedules=schedules,
            paused=paused,
            concurrency_limit=concurrency_limit,
        )
    except ValidationError as exc:
        raise DeploymentError(f"cannot deploy flow {flow.name!r}: {_one_line(exc)}") from exc


def _check_work_pool(client: SkyrunClient, data: DeploymentCreate) -> None:
    if data.work_pool_name is None:
        if data.job_variables:
            raise DeploymentError(
                f"cannot deploy {data.flow_name}/{data.name}: job_variables need a work_pool_name"
            )
        if data.concurrency_limit is not None:
            # The server refuses it too; said here before anything is sent.
            raise DeploymentError(
                f"cannot deploy {data.flow_name}/{data.name}: concurrency_limit needs a "
                "work_pool_name (a limit holds where workers claim runs; flow.serve() does not)"
            )
        return
    try:
        pool = client.read_work_pool(data.work_pool_name)
    except ObjectNotFound as exc:
        raise DeploymentError(
            f"cannot deploy {data.flow_name}/{data.name}: {exc.detail}; create it with: "
            f"skyrun work-pool create {data.work_pool_name} --type process"
        ) from exc
    problems = job_variable_problems(pool.base_job_template, data.job_variables)
    if problems:
        raise DeploymentError(
            f"cannot deploy {data.flow_name}/{data.name} to work pool {pool.name!r}: "
            + "; ".join(problems)
        )


def upsert(client: SkyrunClient, data: DeploymentCreate) -> Deployment:
    try:
        return client.upsert_deployment(data)
    except ObjectNotFound as exc:  # e.g. the work queue
        raise DeploymentError(f"cannot deploy {data.flow_name}/{data.name}: {exc.detail}") from exc


def deploy_flow(
    flow: Flow[Any, Any],
    name: str,
    *,
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
    client: SkyrunClient | None = None,
    quiet: bool = False,
) -> uuid.UUID:
    """Register (create or replace) a deployment of `flow` named `name`; see `Flow.deploy`.

    Returns:
        The deployment's id.

    Raises:
        DeploymentError: The flow, its parameters, schedule, work pool or job variables
            do not allow it; nothing is registered.
    """
    client = client or get_client()
    data = deployment_create(
        flow,
        name,
        work_pool_name=work_pool_name,
        work_queue_name=work_queue_name,
        job_variables=job_variables,
        parameters=parameters,
        schedules=schedules_for(cron, interval, rrule, timezone),
        tags=tags,
        description=description,
        version=version,
        paused=paused,
        concurrency_limit=concurrency_limit,
    )
    _check_work_pool(client, data)
    deployment = upsert(client, data)
    if not quiet:
        full_name = f"{deployment.flow_name}/{deployment.name}"
        print(f"Deployment {full_name!r} registered ({deployment.entrypoint}).", flush=True)
        if work_pool_name is None:
            print("It has no work pool: serve it with flow.serve() to run it.", flush=True)
        print(f"Run it with: skyrun deployment run {full_name}", flush=True)
    return deployment.id
