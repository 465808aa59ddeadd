"""`skyrun flow-run`: list, inspect, read the logs of, and cancel flow runs."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from skyrun.cli.errors import CLIError
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
from skyrun.schemas.core import FlowRun, FlowRunFilter, Log
from skyrun.schemas.orchestration import Decision
from skyrun.schemas.states import State, StateCreate, StateType, utcnow

if TYPE_CHECKING:
    from skyrun.client.client import SkyrunClient

app = typer.Typer(help="List, inspect, follow and cancel flow runs.", no_args_is_help=True)

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
POLL_SECONDS = 0.5
# The SDK flushes a run's last log lines just after it proposes the final state;
# keep following this long after the run ends so those lines are not missed.
SETTLE_SECONDS = 1.5
LOG_PAGE = 500


def describe_state(state: State | None) -> str:
    if state is None:
        return "-"
    if state.name.upper() == state.type.value:
        return state.type.value
    return f"{state.type.value} ({state.name})"


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


def format_log(log: Log) -> str:
    timestamp = log.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"{timestamp} | {logging.getLevelName(log.level):<8} | {log.message}"


def print_new_logs(
    api: SkyrunClient, run_id: uuid.UUID, min_level: int, after_id: int | None
) -> int | None:
    """Print every log line after `after_id`; return the id of the last one printed."""
    while True:
        logs = api.read_logs(run_id, after_id=after_id, min_level=min_level, limit=LOG_PAGE)
        for log in logs:
            typer.echo(format_log(log))
        if logs:
            after_id = logs[-1].id
        if len(logs) < LOG_PAGE:
            return after_id


def has_settled(run: FlowRun, ended_seen_at: float | None) -> bool:
    """Whether the run ended long enough ago that its last log lines have been flushed."""
    if run.state is None or not run.state.is_final:
        return False
    since_end = (utcnow() - run.state.timestamp).total_seconds()
    seen_for = time.monotonic() - ended_seen_at if ended_seen_at is not None else 0.0
    return max(since_end, seen_for) >= SETTLE_SECONDS


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
    last_id = print_new_logs(api, run_id, min_level, None)
    if not follow:
        return
    ended_seen_at: float | None = None
    while True:
        # Read the state before the logs: lines written before the run ended are then
        # all visible by the time an empty read lets us stop.
        run = api.read_flow_run(run_id)
        if ended_seen_at is None and run.state is not None and run.state.is_final:
            ended_seen_at = time.monotonic()
        settled = has_settled(run, ended_seen_at)
        newest_id = print_new_logs(api, run_id, min_level, last_id)
        if settled and newest_id == last_id:
            return
        last_id = newest_id
        time.sleep(POLL_SECONDS)


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
