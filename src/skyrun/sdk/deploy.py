"""`flow.deploy()` and `flow.serve()`: register a flow as a deployment, and serve its runs.

`deploy_flow` upserts a deployment whose entrypoint is the flow's own source
file (relative to the working directory) and function name, with the flow's
parameter schema. `serve_flow` registers one without a work pool and then runs
its due runs itself: each claimed by proposing PENDING (the server accepts only
one claim) and executed by `skyrun flow-run execute` in a child process.
(Imported by `Flow.deploy`/`Flow.serve` only: it needs the client.)
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import PydanticUserError, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from skyrun.client.client import SkyrunClient, get_client
from skyrun.client.errors import ObjectNotFound, ServerUnreachable, SkyrunAPIError
from skyrun.schedules import describe_schedule, parse_schedule
from skyrun.schemas.core import FlowRun, FlowRunFilter
from skyrun.schemas.deployments import Deployment, DeploymentCreate, DeploymentScheduleCreate
from skyrun.schemas.orchestration import Decision
from skyrun.schemas.states import AWAITING_RETRY, StateCreate, StateType, utcnow
from skyrun.sdk.flows import Flow
from skyrun.workers.base import ABORTED_EXIT_CODE, execute_command

# A run asked to cancel gets this long to stop by itself (its engine watches for
# CANCELLING) before serve terminates its process.
CANCEL_GRACE_SECONDS = 10.0
STOP_GRACE_SECONDS = 10.0


class DeploymentError(ValueError):
    """A flow cannot be deployed as asked; the message says what to change."""


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(str(error["msg"]) for error in exc.errors())
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
    partial = {key: value for key, value in schema.items() if key != "required"}
    problems = []
    for error in sorted(Draft202012Validator(partial).iter_errors(values), key=str):
        where = ".".join(str(part) for part in error.path)
        problems.append(f"parameter '{where}': {error.message}" if where else error.message)
    missing = [name for name in schema.get("required", []) if name not in values]
    if need_all and missing:
        problems.append(
            f"scheduled runs need a value for {', '.join(repr(m) for m in missing)} "
            "(no default); give it in parameters="
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
            schedule = parse_schedule(spec)
        except ValueError as exc:
            raise DeploymentError(f"invalid schedule {spec}: {_one_line(exc)}") from exc
        schedules.append(DeploymentScheduleCreate(schedule=schedule.model_dump(mode="json")))
    return schedules


# -- deploy ------------------------------------------------------------------------


def job_variable_problems(template: dict[str, Any], job_variables: dict[str, Any]) -> list[str]:
    """What is wrong with `job_variables` for a work pool's base job template.

    Each must be declared in the template's `variables.properties` (others would be
    silently ignored) and valid against its schema; None means "the pool's default".
    """
    variables = template.get("variables")
    variables = variables if isinstance(variables, dict) else {}
    properties = variables.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    root = Draft202012Validator(variables)
    problems = []
    for name, value in job_variables.items():
        if name not in properties:
            declared = ", ".join(repr(p) for p in properties) or "(none)"
            problems.append(f"unknown job variable {name!r} (the pool declares: {declared})")
            continue
        if value is None or not isinstance(properties[name], dict):
            continue
        # evolve() keeps the root's references, so "$ref": "#/$defs/..." resolves.
        for error in root.evolve(schema=properties[name]).iter_errors(value):
            problems.append(f"job variable {name!r}: {error.message}")
    return problems


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
        )
    except ValidationError as exc:
        raise DeploymentError(f"cannot deploy flow {flow.name!r}: {_one_line(exc)}") from exc


def _check_work_pool(client: SkyrunClient, data: DeploymentCreate) -> None:
    if data.work_pool_name is None:
        if data.job_variables:
            raise DeploymentError(
                f"cannot deploy {data.flow_name}/{data.name}: job_variables need a work_pool_name"
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


def _upsert(client: SkyrunClient, data: DeploymentCreate) -> Deployment:
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
    )
    _check_work_pool(client, data)
    deployment = _upsert(client, data)
    if not quiet:
        full_name = f"{deployment.flow_name}/{deployment.name}"
        print(f"Deployment {full_name!r} registered ({deployment.entrypoint}).", flush=True)
        if work_pool_name is None:
            print("It has no work pool: serve it with flow.serve() to run it.", flush=True)
        print(f"Run it with: skyrun deployment run {full_name}", flush=True)
    return deployment.id


# -- serve -------------------------------------------------------------------------


@dataclass
class _Child:
    run: FlowRun
    process: subprocess.Popen[bytes]
    cancelling_since: float | None = None


class DeploymentServer:
    """Runs a deployment's due runs in child processes: the loop behind `flow.serve()`."""

    def __init__(
        self, client: SkyrunClient, deployment: Deployment, limit: int | None, poll_seconds: float
    ) -> None:
        self.check_options(limit, poll_seconds)
        self.client = client
        self.deployment = deployment
        self.limit = limit
        self.poll_seconds = poll_seconds
        self.children: list[_Child] = []

    @staticmethod
    def check_options(limit: int | None, poll_seconds: float) -> None:
        if limit is not None and limit < 1:
            raise DeploymentError(f"limit must be 1 or more, not {limit}")
        if poll_seconds <= 0:
            raise DeploymentError(f"poll_seconds must be more than 0, not {poll_seconds}")

    def run_forever(self) -> None:
        """Poll until Ctrl-C (or SIGTERM), then stop the runs still going."""
        try:
            with _sigterm_as_interrupt():
                while True:
                    try:
                        self.poll_once()
                    except (ServerUnreachable, SkyrunAPIError) as exc:
                        # A server restart must not stop serving: try again next poll.
                        print(f"Cannot poll the skyrun API ({exc}); retrying.", flush=True)
                    time.sleep(self.poll_seconds)
        except KeyboardInterrupt:
            self.stop()

    def poll_once(self) -> None:
        self._reap()
        self._watch_cancellations()
        self._start_due_runs()

    def _start_due_runs(self) -> None:
        room = (self.limit - len(self.children)) if self.limit is not None else 100
        if room <= 0:
            return
        due = self.client.filter_flow_runs(
            FlowRunFilter(
                deployment_id=self.deployment.id,
                state_type=[StateType.SCHEDULED],
                expected_start_before=utcnow(),
                sort="expected_start_time_asc",
                limit=room,
            )
        ).items
        for flow_run in due:
            if flow_run.state is not None and flow_run.state.name == AWAITING_RETRY:
                continue  # its own process retries it
            # Only ACCEPT makes the run ours: the server refuses a second PENDING.
            response = self.client.set_flow_run_state(
                flow_run.id, StateCreate(type=StateType.PENDING, message="claimed by serve")
            )
            if response.decision is Decision.ACCEPT:
                self._launch(flow_run)

    def _launch(self, flow_run: FlowRun) -> None:
        env = {**os.environ, "SKYRUN_FLOW_RUN_ID": str(flow_run.id)}
        try:
            process = subprocess.Popen(execute_command(flow_run.id), env=env)
        except OSError as exc:
            self._set_final(flow_run.id, StateType.CRASHED, f"cannot start its process: {exc}")
            return
        print(f"Started flow run {flow_run.name!r} ({flow_run.id}).", flush=True)
        self.children.append(_Child(flow_run, process))

    def _reap(self) -> None:
        for child in list(self.children):
            code = child.process.poll()
            if code is not None:
                self.children.remove(child)
                self._finished(child, code)

    def _finished(self, child: _Child, code: int) -> None:
        if code == ABORTED_EXIT_CODE:
            return  # another process owns the run now
        state = self.client.read_flow_run(child.run.id).state
        if state is not None and state.type is StateType.CANCELLING:
            state = self._set_final(child.run.id, StateType.CANCELLED, "cancelled while running")
        elif state is None or not state.is_final:
            state = self._set_final(
                child.run.id,
                StateType.CRASHED,
                f"its process exited with code {code} without reporting a final state",
            )
        shown = state.type.value if state is not None else "in an unknown state"
        print(f"Flow run {child.run.name!r} ended {shown}.", flush=True)

    def _watch_cancellations(self) -> None:
        for child in self.children:
            state = self.client.read_flow_run(child.run.id).state
            if state is None or state.type is not StateType.CANCELLING:
                continue
            now = time.monotonic()
            if child.cancelling_since is None:
                child.cancelling_since = now
            elif now - child.cancelling_since > CANCEL_GRACE_SECONDS:
                child.process.terminate()

    def _set_final(self, run_id: uuid.UUID, kind: StateType, message: str) -> Any:
        response = self.client.set_flow_run_state(run_id, StateCreate(type=kind, message=message))
        return response.state

    def stop(self) -> None:
        """Stop the runs still going; mark CRASHED any that did not report a final state."""
        if self.children:
            print(f"Stopping {len(self.children)} running flow run(s)...", flush=True)
        for child in self.children:
            if child.process.poll() is None:
                child.process.terminate()
        for child in self.children:
            try:
                child.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            state = self.client.read_flow_run(child.run.id).state
            if state is None or not state.is_final:
                self._set_final(
                    child.run.id, StateType.CRASHED, "the process serving it was stopped"
                )
        self.children.clear()
        print("Stopped serving.", flush=True)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while serving (only possible in the main thread)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_flow(
    flow: Flow[Any, Any],
    name: str,
    *,
    cron: str | None = None,
    interval: float | timedelta | None = None,
    rrule: str | None = None,
    parameters: dict[str, Any] | None = None,
    limit: int | None = None,
    poll_seconds: float = 1.0,
    client: SkyrunClient | None = None,
) -> None:
    """Register a deployment without a work pool and run its runs here until Ctrl-C."""
    DeploymentServer.check_options(limit, poll_seconds)
    client = client or get_client()
    data = deployment_create(
        flow,
        name,
        work_pool_name=None,
        work_queue_name=None,
        job_variables=None,
        parameters=parameters,
        schedules=schedules_for(cron, interval, rrule, None),
        tags=None,
        description=None,
        version=None,
        paused=False,
    )
    deployment = _upsert(client, data)
    server = DeploymentServer(client, deployment, limit, poll_seconds)
    full_name = f"{deployment.flow_name}/{deployment.name}"
    print(f"Serving deployment {full_name!r} ({deployment.entrypoint}).", flush=True)
    for item in deployment.schedules:
        print(f"Schedule: {describe_schedule(parse_schedule(item.schedule))}", flush=True)
    print(f"Trigger a run with: skyrun deployment run {full_name}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    server.run_forever()
