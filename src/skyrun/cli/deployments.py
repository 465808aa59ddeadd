"""`skyrun deployment`: list, inspect, run (and watch), pause, resume and delete deployments."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from skyrun.cli.errors import CLIError
from skyrun.cli.follow import describe_state, follow_flow_run
from skyrun.cli.output import (
    LimitOption,
    OutputFormat,
    OutputOption,
    client,
    format_datetime,
    is_uuid,
    print_json,
    print_table,
)
from skyrun.cli.work_pools import parse_assignment
from skyrun.client.errors import ObjectNotFound
from skyrun.schemas.deployments import Deployment, DeploymentRunCreate, DeploymentUpdate
from skyrun.schemas.states import StateType, utcnow
from skyrun.values import parse_value

if TYPE_CHECKING:
    from skyrun.client.client import SkyrunClient

app = typer.Typer(
    help="List, inspect, run, pause, resume and delete deployments.", no_args_is_help=True
)

DeploymentArgument = Annotated[
    str,
    typer.Argument(
        metavar="FLOW/DEPLOYMENT",
        help="The flow's name and the deployment's name (e.g. etl/nightly), or its id.",
        show_default=False,
    ),
]


def read_deployment(api: SkyrunClient, reference: str) -> Deployment:
    """The deployment named `FLOW/DEPLOYMENT` (or by id); a CLIError when there is none."""
    if is_uuid(reference):
        return api.read_deployment(reference)
    flow_name, sep, name = reference.partition("/")
    if not sep or not flow_name.strip() or not name.strip() or "/" in name:
        raise CLIError(
            f"a deployment is named FLOW/DEPLOYMENT (e.g. etl/nightly) or given by its id, "
            f"not {reference!r}"
        )
    try:
        return api.read_deployment_by_name(flow_name, name)
    except ObjectNotFound as exc:
        raise CLIError(f"{exc.detail}; list deployments with 'skyrun deployment ls'") from None


def full_name(deployment: Deployment) -> str:
    return f"{deployment.flow_name}/{deployment.name}"


def describe_schedules(deployment: Deployment) -> list[str]:
    # Imported here: croniter and dateutil add ~10 ms to every CLI command's start-up.
    from skyrun.schedules import describe_schedule, parse_schedule

    described = []
    for item in deployment.schedules:
        try:
            text = describe_schedule(parse_schedule(item.schedule))
        except ValueError:
            text = json.dumps(item.schedule)
        described.append(text if item.active else f"{text} (inactive)")
    return described


@app.command("ls")
def list_deployments(
    flow: Annotated[str | None, typer.Option("--flow", help="Only this flow's.")] = None,
    work_pool: Annotated[
        str | None, typer.Option("--work-pool", "-p", help="Only this work pool's.")
    ] = None,
    limit: LimitOption = 100,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List deployments by flow and name."""
    page = client().list_deployments(flow_name=flow, work_pool_name=work_pool, limit=limit)
    if output == OutputFormat.json:
        print_json(page.items)
        return
    print_table(
        "Deployments",
        ["Name", "Work pool", "Schedules", "Paused", "Tags", "Updated"],
        [
            (
                full_name(d),
                d.work_pool_name or "(served)",
                describe_schedules(d),
                d.paused,
                d.tags,
                d.updated,
            )
            for d in page.items
        ],
        caption=f"{len(page.items)} of {page.count} shown",
    )


def _parameter_rows(deployment: Deployment) -> list[tuple[Any, ...]]:
    schema = deployment.parameter_openapi_schema
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        prop = prop if isinstance(prop, dict) else {}
        value: str | None
        if name in deployment.parameters:
            value = json.dumps(deployment.parameters[name])
        elif "default" in prop:
            value = f"{json.dumps(prop['default'])} (flow default)"
        else:
            value = "(required)" if name in required else None
        kind = prop.get("type") or ("object" if "$ref" in prop or "anyOf" in prop else None)
        rows.append((name, kind, value, prop.get("description")))
    return rows


@app.command()
def inspect(reference: DeploymentArgument, output: OutputOption = OutputFormat.table) -> None:
    """Show a deployment: entrypoint, work pool, schedules, parameters."""
    deployment = read_deployment(client(), reference)
    if output == OutputFormat.json:
        print_json(deployment)
        return
    print_table(
        f"Deployment {full_name(deployment)}",
        ["Field", "Value"],
        [
            ("id", deployment.id),
            ("entrypoint", deployment.entrypoint),
            ("path", deployment.path),
            ("work pool", deployment.work_pool_name or "(none: run by flow.serve())"),
            ("work queue", deployment.work_queue_name),
            ("job variables", json.dumps(deployment.job_variables)),
            ("schedules", describe_schedules(deployment)),
            ("paused", deployment.paused),
            ("concurrency limit", _describe_limit(deployment.concurrency_limit)),
            ("tags", deployment.tags),
            ("version", deployment.version),
            ("description", deployment.description),
            ("pull steps", json.dumps(deployment.pull_steps)),
            ("created", deployment.created),
            ("updated", deployment.updated),
        ],
    )
    print_table(
        "Parameters",
        ["Name", "Type", "Value", "Description"],
        _parameter_rows(deployment),
    )


def _describe_limit(limit: int | None) -> str:
    if limit is None:
        return "none"
    if limit == 0:
        return "0 (no run may start)"
    return f"{limit} active runs at once"


def parse_parameters(
    params_json: str | None, params: list[str], schema: dict[str, Any]
) -> dict[str, Any]:
    """--params (a JSON object), then each --param NAME=VALUE over it.

    A --param VALUE is read by the deployment's parameter schema (skyrun.values):
    text for a str parameter, else JSON when it parses.
    """
    merged: dict[str, Any] = {}
    if params_json is not None:
        try:
            given = json.loads(params_json)
        except json.JSONDecodeError as exc:
            raise CLIError(f"--params is not valid JSON: {exc.msg} (column {exc.colno})")
        if not isinstance(given, dict):
            raise CLIError(
                f"--params must be a JSON object such as '{{\"n\": 3}}', not {params_json!r}"
            )
        merged.update(given)
    properties = _properties(schema)
    for item in params:
        name, value = parse_assignment(item, "--param")
        merged[name] = parse_value(value, properties.get(name))
    return merged


def _properties(schema: Any) -> dict[str, Any]:
    """A JSON schema's `properties`, or {} when it has none (or is not a schema)."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return properties if isinstance(properties, dict) else {}


@app.command()
def run(
    reference: DeploymentArgument,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="NAME=VALUE",
            help="A parameter (VALUE as JSON when it parses, else text; repeatable).",
        ),
    ] = None,
    params: Annotated[
        str | None,
        typer.Option("--params", metavar="JSON", help="Parameters as a JSON object."),
    ] = None,
    job_variable: Annotated[
        list[str] | None,
        typer.Option(
            "--job-variable",
            "-jv",
            metavar="NAME=VALUE",
            help="A job variable for this run (repeatable).",
        ),
    ] = None,
    start_in: Annotated[
        float | None,
        typer.Option("--start-in", metavar="SECONDS", help="Schedule it this many seconds ahead."),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="A tag for the run (repeatable).")
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Print its state changes and logs until it ends; exit 0 only if it COMPLETED.",
        ),
    ] = False,
    watch_timeout: Annotated[
        float | None,
        typer.Option("--watch-timeout", metavar="SECONDS", help="Stop watching after this long."),
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Create a run of a deployment (its parameters merged over the deployment's)."""
    if start_in is not None and start_in < 0:
        raise CLIError(f"--start-in must be 0 or more seconds, not {start_in:g}")
    if watch_timeout is not None and watch_timeout <= 0:
        raise CLIError(f"--watch-timeout must be more than 0 seconds, not {watch_timeout:g}")
    if watch and output == OutputFormat.json:
        raise CLIError("--watch prints a stream of lines; it cannot be combined with -o json")
    job_variable_texts = [parse_assignment(item, "--job-variable") for item in job_variable or []]
    api = client()
    deployment = read_deployment(api, reference)
    parameters = parse_parameters(params, param or [], deployment.parameter_openapi_schema)
    job_variables = (
        read_job_variables(api, deployment, job_variable_texts) if job_variable_texts else {}
    )
    scheduled_time = utcnow() + timedelta(seconds=start_in) if start_in else None
    flow_run = api.create_deployment_run(
        deployment.id,
        DeploymentRunCreate(
            parameters=parameters,
            job_variables=job_variables,
            tags=tag or [],
            scheduled_time=scheduled_time,
        ),
    )
    if output == OutputFormat.json:
        print_json(flow_run)
        return
    typer.echo(
        f"Created flow run {flow_run.name!r} ({flow_run.id}) of deployment "
        f"{full_name(deployment)!r}, scheduled for {format_datetime(flow_run.expected_start_time)}."
    )
    if deployment.work_pool_name:
        typer.echo(f"A worker of work pool {deployment.work_pool_name!r} will run it.")
    else:
        typer.echo("This deployment has no work pool: the process serving it will run it.")
    if deployment.paused:
        typer.echo("Note: the deployment is paused; only its schedule is paused, not this run.")
    if not watch:
        typer.echo(f"Follow it with: skyrun flow-run logs {flow_run.id} --follow")
        return
    final = follow_flow_run(api, flow_run.id, with_states=True, timeout=watch_timeout)
    assert final is not None  # a run that has ended has a state
    if final.type is not StateType.COMPLETED:
        reason = f": {final.message}" if final.message else ""
        raise CLIError(f"flow run {flow_run.name!r} ended {describe_state(final)}{reason}")
    typer.echo(f"Flow run {flow_run.name!r} COMPLETED.")


def read_job_variables(
    api: SkyrunClient, deployment: Deployment, texts: list[tuple[str, str]]
) -> dict[str, Any]:
    """--job-variable NAME=VALUE pairs read by the pool's variable schemas and checked
    against them: a CLIError for variables the pool would ignore or reject."""
    # Imported here: it loads the SDK's deploy module and jsonschema.
    from skyrun.sdk.deploy import job_variable_problems

    if deployment.work_pool_name is None:
        raise CLIError(
            f"deployment {full_name(deployment)!r} has no work pool, so --job-variable "
            "has nothing to apply to (a served deployment runs in the serving process)"
        )
    pool = api.read_work_pool(deployment.work_pool_name)
    properties = _properties(pool.base_job_template.get("variables"))
    job_variables = {name: parse_value(text, properties.get(name)) for name, text in texts}
    problems = job_variable_problems(pool.base_job_template, job_variables)
    if problems:
        raise CLIError(f"work pool {pool.name!r}: {'; '.join(problems)}")
    return job_variables


def _set_paused(reference: str, paused: bool) -> Deployment:
    api = client()
    deployment = read_deployment(api, reference)
    return api.update_deployment(deployment.id, DeploymentUpdate(paused=paused))


@app.command()
def pause(reference: DeploymentArgument) -> None:
    """Pause a deployment's schedules (its future scheduled runs are removed)."""
    deployment = _set_paused(reference, True)
    typer.echo(
        f"Paused deployment {full_name(deployment)!r}; resume it with: "
        f"skyrun deployment resume {full_name(deployment)}"
    )


@app.command()
def resume(reference: DeploymentArgument) -> None:
    """Resume a paused deployment's schedules."""
    deployment = _set_paused(reference, False)
    typer.echo(f"Resumed deployment {full_name(deployment)!r}.")


@app.command()
def delete(reference: DeploymentArgument) -> None:
    """Delete a deployment (and the runs its schedules created that have not started)."""
    api = client()
    deployment = read_deployment(api, reference)
    api.delete_deployment(deployment.id)
    typer.echo(f"Deleted deployment {full_name(deployment)!r}.")
