"""`skyrun deploy`: run a project's build and push steps, then register its deployments.

The order is what makes a failed deploy leave nothing behind: every deployment is checked
(its flow imports, its work pool exists) before any step runs; each distinct build/push
sequence runs once; every deployment is rendered and validated; only then is anything
registered.

Placeholders: build and push steps, and the deployment's own fields, resolve at deploy time
(earlier steps' outputs, `$ENV`, Variables). Pull steps run where the flow runs, so only the
outputs of build and push steps are filled in now; `$ENV`, Variables, blocks and references
to earlier pull steps stay as written and resolve on the machine that runs the flow.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from skyrun.client.client import SkyrunClient
from skyrun.client.errors import ObjectNotFound
from skyrun.deploy.project import DeploymentSpec, ProjectFile
from skyrun.deploy.steps import (
    Outputs,
    StepError,
    output_value,
    parse_step,
    render_step_arguments,
    run_steps,
)
from skyrun.schemas.deployments import Deployment, DeploymentCreate, DeploymentScheduleCreate
from skyrun.schemas.work_pools import WorkPool
from skyrun.sdk.deploy import DeploymentError, checked_parameters, parameter_schema, schedules_for
from skyrun.sdk.execute import EntrypointError, load_flow
from skyrun.sdk.flows import Flow
from skyrun.templating import References, Resolution, resolve_shared, substitute
from skyrun.validation import job_variable_problems
from skyrun.values import parse_value

__all__ = [
    "DeployError",
    "Overrides",
    "deploy_project",
    "prepare_pull_steps",
    "select_deployments",
    "single_flow_project",
]

Say = Callable[[str], None]


class DeployError(ValueError):
    """The deploy cannot go on; nothing has been registered. The message says what to fix."""


@dataclass(frozen=True)
class Overrides:
    """What the command line sets over every selected deployment."""

    work_pool_name: str | None = None
    work_queue_name: str | None = None
    job_variables: list[tuple[str, str]] = field(default_factory=list)  # NAME, text
    parameters: list[tuple[str, str]] = field(default_factory=list)  # NAME, text
    cron: str | None = None
    interval: float | None = None
    rrule: str | None = None
    timezone: str | None = None
    tags: list[str] = field(default_factory=list)

    def schedules(self) -> list[DeploymentScheduleCreate] | None:
        """The schedules given on the command line, or None when none was."""
        if self.cron is None and self.interval is None and self.rrule is None:
            if self.timezone is not None:
                raise DeployError(
                    "--timezone applies to a schedule: give --cron, --interval or --rrule"
                )
            return None
        try:
            return schedules_for(self.cron, self.interval, self.rrule, self.timezone)
        except DeploymentError as exc:
            raise DeployError(str(exc)) from exc


@dataclass
class _Planned:
    spec: DeploymentSpec
    flow: Flow[Any, Any]
    pool: WorkPool | None
    build: list[Any]
    push: list[Any]
    pull: list[Any]


def single_flow_project(entrypoint: str, name: str) -> ProjectFile:
    """The project `skyrun deploy path/to/file.py:flow --name NAME` means without a file.

    Raises:
        DeployError: The name or entrypoint is not valid.
    """
    try:
        return ProjectFile(
            name=Path.cwd().name or "project",
            deployments=[DeploymentSpec(name=name, entrypoint=entrypoint)],
        )
    except ValidationError as exc:
        raise DeployError(f"cannot deploy {entrypoint}: {exc.errors()[0]['msg']}") from exc


def select_deployments(
    project: ProjectFile, names: list[str], deploy_all: bool
) -> list[DeploymentSpec]:
    """The deployments named (`NAME` or `FLOW/NAME`... by NAME), or all of them.

    Raises:
        DeployError: None is named and there is more than one, or a name is unknown.
    """
    known = [spec.name for spec in project.deployments]
    if not known:
        raise DeployError("skyrun.yaml declares no deployments; add one under `deployments:`")
    if deploy_all:
        if names:
            raise DeployError("give either --all or --name, not both")
        return list(project.deployments)
    if not names:
        if len(known) == 1:
            return list(project.deployments)
        raise DeployError(
            f"skyrun.yaml declares {len(known)} deployments ({', '.join(known)}); "
            "choose with --name NAME (repeatable) or deploy them all with --all"
        )
    chosen: list[DeploymentSpec] = []
    for name in names:
        short = name.rsplit("/", 1)[-1]
        matches = [spec for spec in project.deployments if spec.name == short]
        if not matches:
            raise DeployError(
                f"skyrun.yaml has no deployment named {name!r}; it declares: {', '.join(known)}"
            )
        chosen.extend(spec for spec in matches if spec not in chosen)
    return chosen


@contextlib.contextmanager
def _working_directory(directory: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


def _load_flow(spec: DeploymentSpec) -> Flow[Any, Any]:
    if not spec.entrypoint:
        raise DeployError(
            f"deployment {spec.name!r} has no entrypoint; set `entrypoint: path/to/file.py:flow`"
        )
    try:
        return load_flow(spec.entrypoint)
    except EntrypointError as exc:
        raise DeployError(f"deployment {spec.name!r}: {exc}") from exc


def _read_pool(client: SkyrunClient, name: str, deployment: str) -> WorkPool:
    try:
        return client.read_work_pool(name)
    except ObjectNotFound as exc:
        raise DeployError(
            f"deployment {deployment!r}: work pool {name!r} does not exist; create it with: "
            f"skyrun work-pool create {name} --type process"
        ) from exc


def _plan(
    client: SkyrunClient, project: ProjectFile, spec: DeploymentSpec, overrides: Overrides
) -> _Planned:
    flow = _load_flow(spec)
    pool_name = overrides.work_pool_name or (spec.work_pool.name if spec.work_pool else None)
    pool = _read_pool(client, pool_name, spec.name) if pool_name else None
    return _Planned(
        spec=spec,
        flow=flow,
        pool=pool,
        build=project.steps(spec, "build"),
        push=project.steps(spec, "push"),
        pull=project.steps(spec, "pull"),
    )


def prepare_pull_steps(pull: list[Any], outputs: Outputs) -> list[Any]:
    """Pull steps with build and push outputs filled in; everything else kept for the run.

    Raises:
        DeployError: A placeholder names no build, push or earlier pull step.
    """
    pull_ids: set[str] = set()
    problems: list[str] = []
    prepared: list[Any] = []
    for index, step in enumerate(pull):
        label = f"pull step {index + 1}"
        try:
            name, arguments = parse_step(step, label)
        except StepError as exc:
            raise DeployError(str(exc)) from exc
        label = f"{label} ({name})"

        def resolve(reference: str, path: str, whole: bool) -> Resolution:
            shared = resolve_shared(reference, path, References())
            if shared is not None:
                return shared  # kept for the run, or an unknown skyrun.* name
            step_id = reference.partition(".")[0]
            if step_id in pull_ids:
                return Resolution(keep=True)
            found = output_value(reference, path, outputs)
            if found is not None:
                return found
            known = ", ".join(sorted({*outputs, *pull_ids})) or "none"
            return Resolution(
                problem=f"{path}: '{{{{ {reference} }}}}' names no build, push or earlier pull "
                f"step (ids: {known})"
            )

        rendered, found = substitute(arguments, resolve, label)
        problems.extend(found)
        prepared.append({name: rendered})
        if arguments.get("id") is not None:
            pull_ids.add(str(arguments["id"]))
    if problems:
        raise DeployError("; ".join(problems))
    return prepared


def _render(value: Any, where: str, references: References, outputs: Outputs) -> Any:
    try:
        return render_step_arguments({"value": value}, where, references, outputs)["value"]
    except StepError as exc:
        raise DeployError(str(exc).replace(f"{where}.value", where)) from exc


def _schedules(spec: DeploymentSpec, overrides: Overrides) -> list[DeploymentScheduleCreate]:
    given = overrides.schedules()
    if given is not None:
        return given
    return [schedule.schedule_create() for schedule in spec.schedules]


def _job_variables(
    planned: _Planned, overrides: Overrides, references: References, outputs: Outputs
) -> dict[str, Any]:
    spec = planned.spec
    written = dict(spec.work_pool.job_variables or {}) if spec.work_pool else {}
    job_variables = _render(
        written, f"deployment {spec.name!r}: work_pool.job_variables", references, outputs
    )
    if planned.pool is None:
        if job_variables or overrides.job_variables:
            raise DeployError(
                f"deployment {spec.name!r}: job variables need a work pool; set "
                "work_pool.name or pass --pool"
            )
        return {}
    properties = planned.pool.base_job_template.get("variables", {}).get("properties", {})
    for name, text in overrides.job_variables:
        job_variables[name] = parse_value(text, properties.get(name))
    problems = job_variable_problems(planned.pool.base_job_template, job_variables)
    if problems:
        raise DeployError(
            f"deployment {spec.name!r} on work pool {planned.pool.name!r}: " + "; ".join(problems)
        )
    return job_variables


def _create(
    directory: Path,
    planned: _Planned,
    overrides: Overrides,
    references: References,
    outputs: Outputs,
) -> DeploymentCreate:
    spec, flow = planned.spec, planned.flow
    where = f"deployment {spec.name!r}"
    if spec.concurrency_limit is not None and planned.pool is None:
        raise DeployError(
            f"{where}: concurrency_limit needs a work pool (its workers enforce it); set "
            "work_pool.name or pass --pool"
        )
    schema = parameter_schema(flow)
    parameters = dict(
        _render(dict(spec.parameters or {}), f"{where}: parameters", references, outputs)
    )
    properties = schema.get("properties", {})
    for name, text in overrides.parameters:
        parameters[name] = parse_value(text, properties.get(name))
    schedules = _schedules(spec, overrides)
    try:
        values = checked_parameters(flow, schema, parameters, need_all=bool(schedules))
    except DeploymentError as exc:
        raise DeployError(f"{where}: {exc}") from exc
    pull = (
        prepare_pull_steps(planned.pull, outputs)
        if planned.pull
        else [{"skyrun.deploy.steps.set_working_directory": {"directory": str(directory)}}]
    )
    work_queue = overrides.work_queue_name or (
        spec.work_pool.work_queue_name if spec.work_pool else None
    )
    try:
        return DeploymentCreate(
            flow_name=flow.name,
            name=spec.name,
            entrypoint=spec.entrypoint,
            path=str(directory),
            description=_render(spec.description, f"{where}: description", references, outputs)
            or flow.description,
            version=_render(spec.version, f"{where}: version", references, outputs),
            parameters=values,
            parameter_openapi_schema=schema,
            tags=[*(spec.tags or []), *(t for t in overrides.tags if t not in (spec.tags or []))],
            work_pool_name=planned.pool.name if planned.pool else None,
            work_queue_name=work_queue if planned.pool else None,
            job_variables=_job_variables(planned, overrides, references, outputs),
            pull_steps=pull,
            schedules=schedules,
            paused=bool(spec.paused),
            concurrency_limit=spec.concurrency_limit,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise DeployError(f"{where}: {problems}") from exc


def _run_sequence(
    planned: _Planned, references: References, done: dict[str, Outputs], say: Say
) -> Outputs:
    key = json.dumps([planned.build, planned.push], sort_keys=True, default=str)
    if key in done:
        return done[key]
    outputs: Outputs = {}
    for section, steps in (("build", planned.build), ("push", planned.push)):
        if steps:
            say(f"Running {len(steps)} {section} step(s) for {planned.spec.name!r}...")
        try:
            run_steps(steps, references=references, outputs=outputs, section=section)
        except StepError as exc:
            raise DeployError(f"deployment {planned.spec.name!r}: {exc}") from exc
    done[key] = outputs
    return outputs


def deploy_project(
    directory: Path,
    project: ProjectFile,
    specs: list[DeploymentSpec],
    overrides: Overrides,
    client: SkyrunClient,
    say: Say = print,
) -> list[Deployment]:
    """Build, push and register `specs` of the project in `directory`.

    Raises:
        DeployError: Anything the user must fix; nothing has been registered.
    """
    references = References(
        env=os.environ, variables=client.variable_value, blocks=client.block_value
    )
    with _working_directory(directory):
        planned = [_plan(client, project, spec, overrides) for spec in specs]
        done: dict[str, Outputs] = {}
        creates = []
        for plan in planned:
            outputs = _run_sequence(plan, references, done, say)
            with _working_directory(directory):
                creates.append(_create(directory, plan, overrides, references, outputs))
    return [_register(client, data) for data in creates]


def _register(client: SkyrunClient, data: DeploymentCreate) -> Deployment:
    try:
        return client.upsert_deployment(data)
    except ObjectNotFound as exc:
        raise DeployError(f"cannot register {data.flow_name}/{data.name}: {exc.detail}") from exc
