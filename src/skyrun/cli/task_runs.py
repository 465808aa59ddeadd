"""`skyrun task-run`: list task runs (all, or one flow run's) and inspect one."""

from __future__ import annotations

from typing import Annotated

import typer

from skyrun.cli.flow_runs import format_duration
from skyrun.cli.follow import describe_state
from skyrun.cli.output import (
    LimitOption,
    OutputFormat,
    OutputOption,
    client,
    parse_uuid,
    print_json,
    print_table,
)

app = typer.Typer(help="List and inspect task runs.", no_args_is_help=True)


@app.command("ls")
def list_task_runs(
    flow_run: Annotated[
        str | None, typer.Option("--flow-run", metavar="ID", help="Only this flow run's task runs.")
    ] = None,
    limit: LimitOption = 20,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List task runs, newest first."""
    flow_run_id = parse_uuid(flow_run, "flow run id") if flow_run is not None else None
    api = client()
    if flow_run_id is not None:
        api.read_flow_run(flow_run_id)  # an unknown id is an error, not an empty list
    # The API lists task runs oldest first: when there are more than `limit`, read
    # the last page again to show the newest.
    page = api.list_task_runs(flow_run_id, limit=limit)
    if page.count > limit:
        page = api.list_task_runs(flow_run_id, limit=limit, offset=page.count - limit)
    task_runs = page.items[::-1]
    if output == OutputFormat.json:
        print_json(task_runs)
        return
    rows = [
        (
            run.id,
            run.name,
            describe_state(run.state),
            run.start_time,
            format_duration(run.total_run_time) if run.start_time else None,
            run.run_count,
        )
        for run in task_runs
    ]
    print_table(
        "Task runs",
        ["ID", "Name", "State", "Start", "Duration", "Run count"],
        rows,
        caption=f"{len(task_runs)} of {page.count} shown",
    )


@app.command()
def inspect(
    task_run_id: Annotated[str, typer.Argument(metavar="ID", help="The task run's id.")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a task run and its state history."""
    run = client().read_task_run(parse_uuid(task_run_id, "task run id"))
    if output == OutputFormat.json:
        print_json(run)
        return
    print_table(
        f"Task run {run.name}",
        ["Field", "Value"],
        [
            ("id", run.id),
            ("task key", run.task_key),
            ("flow run", run.flow_run_id),
            ("state", describe_state(run.state)),
            ("message", run.state.message if run.state else None),
            ("tags", run.tags),
            ("started", run.start_time),
            ("ended", run.end_time),
            ("run count", run.run_count),
            ("run time", format_duration(run.total_run_time)),
            ("created", run.created),
        ],
    )
    print_table(
        "State history",
        ["Time", "State", "Message"],
        [(s.timestamp, describe_state(s), s.message) for s in run.state_history],
    )
