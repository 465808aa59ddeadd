"""`skyrun deploy`: build, push and register the deployments of `skyrun.yaml` (or of one flow)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from skyrun.cli.errors import CLIError
from skyrun.cli.output import client
from skyrun.cli.work_pools import parse_assignment
from skyrun.client.client import SkyrunClient
from skyrun.deploy.project import PROJECT_FILE_NAME, load_project
from skyrun.deploy.project_errors import ProjectFileError
from skyrun.deploy.runner import (
    DeployError,
    Overrides,
    deploy_project,
    select_deployments,
    single_flow_project,
)
from skyrun.schemas.deployments import Deployment
from skyrun.schemas.work_pools import WorkerStatus


def deploy_command(
    entrypoint: Annotated[
        str | None,
        typer.Argument(
            metavar="[ENTRYPOINT]",
            help="path/to/file.py:flow, to deploy one flow without a skyrun.yaml.",
        ),
    ] = None,
    name: Annotated[
        list[str] | None,
        typer.Option("--name", "-n", help="A deployment to deploy (repeatable)."),
    ] = None,
    deploy_all: Annotated[
        bool, typer.Option("--all", help="Deploy every deployment of skyrun.yaml.")
    ] = False,
    pool: Annotated[
        str | None, typer.Option("--pool", "-p", help="The work pool, over skyrun.yaml's.")
    ] = None,
    work_queue: Annotated[
        str | None, typer.Option("--work-queue", "-q", help="The work queue of that pool.")
    ] = None,
    job_variable: Annotated[
        list[str] | None,
        typer.Option(
            "--job-variable", "-jv", metavar="NAME=VALUE", help="A job variable (repeatable)."
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="NAME=VALUE",
            help="A default parameter (VALUE as JSON when it parses, else text; repeatable).",
        ),
    ] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="A cron schedule.")] = None,
    interval: Annotated[
        float | None, typer.Option("--interval", metavar="SECONDS", help="An interval schedule.")
    ] = None,
    rrule: Annotated[str | None, typer.Option("--rrule", help="An RRULE schedule.")] = None,
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="The schedule's time zone (IANA name).")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    project_file: Annotated[
        Path, typer.Option("--project-file", help="The project file.", show_default=True)
    ] = Path(PROJECT_FILE_NAME),
) -> None:
    """Run the build and push steps and register the deployments (nothing on failure)."""
    overrides = Overrides(
        work_pool_name=pool,
        work_queue_name=work_queue,
        job_variables=[parse_assignment(item, "--job-variable") for item in job_variable or []],
        parameters=[parse_assignment(item, "--param") for item in param or []],
        cron=cron,
        interval=interval,
        rrule=rrule,
        timezone=timezone,
        tags=list(tag or []),
    )
    try:
        if entrypoint is not None:
            if not name or len(name) != 1 or deploy_all:
                raise CLIError(f"deploying {entrypoint} needs one --name NAME for the deployment")
            directory = Path.cwd()
            project = single_flow_project(entrypoint, name[0])
            specs = list(project.deployments)
        else:
            path = project_file.resolve()
            if not path.is_file():
                raise CLIError(
                    f"{project_file} not found in {Path.cwd()}; create one with `skyrun init`, "
                    "or deploy one flow with `skyrun deploy path/to/file.py:flow --name NAME`"
                )
            directory = path.parent
            project = load_project(path)
            specs = select_deployments(project, list(name or []), deploy_all)
        api = client()
        deployments = deploy_project(directory, project, specs, overrides, api, say=typer.echo)
    except (DeployError, ProjectFileError) as exc:
        raise CLIError(f"{exc}\nNothing was registered.") from exc
    for deployment in deployments:
        _report(api, deployment)


def _report(api: SkyrunClient, deployment: Deployment) -> None:
    full_name = f"{deployment.flow_name}/{deployment.name}"
    typer.echo(f"Deployment {full_name!r} registered ({deployment.entrypoint}).")
    if deployment.work_pool_name is None:
        typer.echo("It has no work pool: serve it with flow.serve() to run it.")
    else:
        workers = api.list_workers(deployment.work_pool_name)
        if not any(worker.status is WorkerStatus.ONLINE for worker in workers):
            typer.echo(
                f"Warning: no worker is polling work pool {deployment.work_pool_name!r}; start "
                f"one with: skyrun worker start --pool {deployment.work_pool_name}",
                err=True,
            )
    typer.echo(f"Run it with: skyrun deployment run {full_name}")
