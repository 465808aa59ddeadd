"""`skyrun flow-run`: list, inspect, read the logs of, and cancel flow runs."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from skyrun.cli.errors import CLIError
from skyrun.cli.follow import describe_state, follow_flow_run, format_log, new_logs
from skyrun.cli.output import (
    LimitOption,
    OutputFormat,
    OutputOption,
    client,
    parse_uuid,
    print_json,
    print_table,
    to_jsonable,
)
from skyrun.schemas.core import FlowRunFilter
from skyrun.schemas.orchestration import Decision
from skyrun.schemas.states import StateCreate, StateType

if TYPE_CHECKING:
    from skyrun.client.client import SkyrunClient

app = typer.Typer(help="List, inspect, follow and cancel flow runs.", no_args_is_help=True)

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def parse_state_type(name: str) -> StateType:
    try:
        return StateType(name.upper())
    except ValueError:
        known = ", ".join(t.value for t in StateType)
        raise CLIError(f"unknown state type {name!r}; use one of {known}") from None


def format_duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


def count_task_runs(api: SkyrunClient, flow_run_id: uuid.UUID) -> dict[str, int]:
    """How many of a flow run's task runs are in each state type, in StateType order."""
    counts = api.count_task_runs(flow_run_id)
    order = [t.value for t in StateType] + ["UNKNOWN"]
    return {state: counts[state] for state in order if counts.get(state)}


def describe_task_run_counts(counts: dict[str, int]) -> str:
    """e.g. "10 (9 COMPLETED, 1 FAILED)", or "0"."""
    total = sum(counts.values())
    if not total:
        return "0"
    return f"{total} ({', '.join(f'{n} {state}' for state, n in counts.items())})"


@app.command("ls")
def list_flow_runs(
    flow: Annotated[str | None, typer.Option("--flow", help="Only runs of this flow.")] = None,
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            metavar="TYPE",
            help="Only runs in this state type, e.g. COMPLETED (repeatable).",
        ),
    ] = None,
    limit: LimitOption = 20,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List flow runs, newest first."""
    state_types = [parse_state_type(name) for name in state or []]
    page = client().filter_flow_runs(
        FlowRunFilter(flow_name=flow, state_type=state_types or None, limit=limit)
    )
    if output == OutputFormat.json:
        print_json(page.items)
        return
    rows = [
        (
            run.id,
            run.flow_name,
            run.name,
            describe_state(run.state),
            run.start_time or run.expected_start_time,
            format_duration(run.total_run_time) if run.start_time else None,
        )
        for run in page.items
    ]
    print_table(
        "Flow runs",
        ["ID", "Flow", "Name", "State", "Start", "Duration"],
        rows,
        caption=f"{len(page.items)} of {page.count} shown",
    )


@app.command()
def inspect(
    flow_run_id: Annotated[str, typer.Argument(metavar="ID", help="The flow run's id.")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a flow run, its state history and how many of its task runs are in each state."""
    run_id = parse_uuid(flow_run_id, "flow run id")
    api = client()
    run = api.read_flow_run(run_id)
    states = api.read_flow_run_states(run_id)
    task_run_counts = count_task_runs(api, run_id)
    if output == OutputFormat.json:
        print_json(
            {
                **to_jsonable(run),
                "state_history": to_jsonable(states),
                "task_runs": {"count": sum(task_run_counts.values()), "by_state": task_run_counts},
            }
        )
        return
    print_table(
        f"Flow run {run.name}",
        ["Field", "Value"],
        [
            ("id", run.id),
            ("flow", run.flow_name or run.flow_id),
            ("state", describe_state(run.state)),
            ("message", run.state.message if run.state else None),
            ("parameters", json.dumps(to_jsonable(run.parameters))),
            ("tags", run.tags),
            ("deployment", run.deployment_name),
            ("work pool", run.work_pool_name),
            ("expected start", run.expected_start_time),
            ("started", run.start_time),
            ("ended", run.end_time),
            ("run count", run.run_count),
            ("run time", format_duration(run.total_run_time)),
            ("task runs", describe_task_run_counts(task_run_counts)),
            ("created", run.created),
        ],
    )
    print_table(
        "State history",
        ["Time", "State", "Message"],
        [(s.timestamp, describe_state(s), s.message) for s in states],
    )


def parse_level(level: str) -> int:
    """A level name (INFO) or number (20) as a number."""
    if level.isdigit():
        return int(level)
    try:
        return LEVELS[level.upper()]
    except KeyError:
        raise CLIError(
            f"unknown log level {level!r}; use one of {', '.join(LEVELS)} or a number"
        ) from None


@app.command()
def logs(
    flow_run_id: Annotated[str, typer.Argument(metavar="ID", help="The flow run's id.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the run ends.")
    ] = False,
    level: Annotated[
        str | None,
        typer.Option(help="Only lines at this level or above: DEBUG, INFO, ... or a number."),
    ] = None,
) -> None:
    """Print a flow run's log lines as `timestamp | LEVEL | message`."""
    run_id = parse_uuid(flow_run_id, "flow run id")
    min_level = parse_level(level) if level is not None else 0
    api = client()
    api.read_flow_run(run_id)  # an unknown id is an error, not an empty log
    if follow:
        follow_flow_run(api, run_id, min_level=min_level)
        return
    for log in new_logs(api, run_id, None, min_level):
        typer.echo(format_log(log))


@app.command()
def cancel(
    flow_run_id: Annotated[str, typer.Argument(metavar="ID", help="The flow run's id.")],
) -> None:
    """Cancel a flow run: a scheduled run is cancelled at once, a running one is stopped."""
    run_id = parse_uuid(flow_run_id, "flow run id")
    response = client().set_flow_run_state(run_id, StateCreate(type=StateType.CANCELLING))
    if response.decision is not Decision.ACCEPT:
        reason = response.reason or f"the server answered {response.decision.value}"
        raise CLIError(f"cannot cancel flow run {run_id}: {reason}")
    typer.echo(f"Flow run {run_id} is now {describe_state(response.state)}.")
    if response.state is not None and response.state.type is StateType.CANCELLING:
        typer.echo("The process running it will stop it and mark it CANCELLED.")
