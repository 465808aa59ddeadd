"""`skyrun work-queue`: the queues of a work pool (priority, concurrency, pause)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from skyrun.cli.errors import CLIError
from skyrun.cli.output import OutputFormat, OutputOption, client, print_json, print_table
from skyrun.cli.work_pools import ConcurrencyOption, DescriptionOption
from skyrun.schemas.work_pools import WorkQueueCreate, WorkQueueUpdate

app = typer.Typer(
    help="Create, list, change, pause and delete a work pool's queues.", no_args_is_help=True
)

NameArgument = Annotated[str, typer.Argument(help="The queue's name.", show_default=False)]
PoolOption = Annotated[
    str, typer.Option("--pool", "-p", help="The work pool the queue belongs to.")
]


def _priority(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise CLIError(f"--priority must be 1 or more (1 is served first), not {value}")
    return value


PriorityOption = Annotated[
    int | None,
    typer.Option(
        "--priority", callback=_priority, help="1 is served first, then 2, ... (default 1)."
    ),
]


@app.command()
def create(
    name: NameArgument,
    pool: PoolOption,
    priority: PriorityOption = None,
    concurrency_limit: ConcurrencyOption = None,
    description: DescriptionOption = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
) -> None:
    """Create a queue in a work pool."""
    data = WorkQueueCreate(
        name=name,
        priority=priority if priority is not None else 1,
        concurrency_limit=concurrency_limit,
        description=description,
        is_paused=paused,
    )
    queue = client().create_work_queue(pool, data)
    typer.echo(
        f"Created work queue {queue.name!r} in work pool {pool!r} (priority {queue.priority})."
    )


@app.command("ls")
def list_work_queues(pool: PoolOption, output: OutputOption = OutputFormat.table) -> None:
    """List a work pool's queues, highest priority first."""
    queues = client().list_work_queues(pool)
    if output == OutputFormat.json:
        print_json(queues)
        return
    print_table(
        f"Work queues of {pool}",
        ["Name", "Priority", "Concurrency limit", "Paused", "Last polled", "Description"],
        [
            (q.name, q.priority, q.concurrency_limit, q.is_paused, q.last_polled, q.description)
            for q in queues
        ],
    )


@app.command()
def update(
    name: NameArgument,
    pool: PoolOption,
    priority: PriorityOption = None,
    concurrency_limit: ConcurrencyOption = None,
    no_concurrency_limit: Annotated[
        bool, typer.Option("--no-concurrency-limit", help="Remove the concurrency limit.")
    ] = False,
    description: DescriptionOption = None,
) -> None:
    """Change a queue's priority, concurrency limit or description."""
    if concurrency_limit is not None and no_concurrency_limit:
        raise CLIError("give --concurrency-limit or --no-concurrency-limit, not both")
    changes: dict[str, Any] = {}
    if priority is not None:
        changes["priority"] = priority
    if concurrency_limit is not None or no_concurrency_limit:
        changes["concurrency_limit"] = concurrency_limit
    if description is not None:
        changes["description"] = description
    if not changes:
        raise CLIError(
            "nothing to change; give --priority, --concurrency-limit, --no-concurrency-limit "
            "or --description"
        )
    queue = client().update_work_queue(pool, name, WorkQueueUpdate(**changes))
    limit = queue.concurrency_limit if queue.concurrency_limit is not None else "none"
    typer.echo(
        f"Updated work queue {queue.name!r} in work pool {pool!r} "
        f"(priority {queue.priority}, concurrency limit {limit})."
    )


@app.command()
def pause(name: NameArgument, pool: PoolOption) -> None:
    """Pause a queue: workers claim none of its runs until it is resumed."""
    client().update_work_queue(pool, name, WorkQueueUpdate(is_paused=True))
    typer.echo(f"Paused work queue {name!r} in work pool {pool!r}.")


@app.command()
def resume(name: NameArgument, pool: PoolOption) -> None:
    """Resume a paused queue."""
    client().update_work_queue(pool, name, WorkQueueUpdate(is_paused=False))
    typer.echo(f"Resumed work queue {name!r} in work pool {pool!r}.")


@app.command()
def delete(name: NameArgument, pool: PoolOption) -> None:
    """Delete a queue (not the pool's default queue)."""
    client().delete_work_queue(pool, name)
    typer.echo(f"Deleted work queue {name!r} from work pool {pool!r}.")
