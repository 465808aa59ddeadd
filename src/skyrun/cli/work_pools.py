"""`skyrun work-pool`: create, list, inspect, change, pause and delete work pools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from skyrun.cli.errors import CLIError
from skyrun.cli.output import (
    OutputFormat,
    OutputOption,
    client,
    print_json,
    print_table,
    stdout_console,
    to_jsonable,
    warn,
)
from skyrun.jobs.types import (
    UnknownWorkerType,
    WorkerTypeNotInstalled,
    known_types,
    type_job_template,
)
from skyrun.schemas.work_pools import WorkPool, WorkPoolCreate, WorkPoolUpdate

if TYPE_CHECKING:
    from skyrun.jobs.templates import JobTemplateError

app = typer.Typer(
    help="Create, inspect, change, pause and delete work pools.", no_args_is_help=True
)

NameArgument = Annotated[str, typer.Argument(help="The work pool's name.", show_default=False)]
TemplateFileOption = Annotated[
    str | None,
    typer.Option(
        "--base-job-template",
        metavar="FILE",
        help="A JSON file with 'job_configuration' and 'variables' "
        "(start from 'get-default-base-job-template').",
    ),
]


def _non_negative_limit(value: int | None) -> int | None:
    if value is not None and value < 0:
        raise CLIError(f"--concurrency-limit must be 0 or more, not {value}")
    return value


ConcurrencyOption = Annotated[
    int | None,
    typer.Option(
        "--concurrency-limit",
        callback=_non_negative_limit,
        help="At most this many runs at once.",
    ),
]
DescriptionOption = Annotated[
    str | None, typer.Option("--description", help="Shown in 'ls' and the UI.")
]


def template_problem(exc: JobTemplateError) -> str:
    """A template error on one line: every problem, separated by ';'."""
    return "; ".join(" ".join(problem.split()) for problem in exc.problems)


def read_template_file(path: str) -> dict[str, Any]:
    """A base job template read from `path` and validated; a CLIError naming the file if not."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CLIError(f"cannot read base job template file {path}: {exc.strerror or exc}")
    try:
        template = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(
            f"base job template file {path} is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})"
        )
    # Imported here: jsonschema adds ~25 ms to every CLI command's start-up.
    from skyrun.jobs.templates import JobTemplateError, validate_base_job_template

    if not isinstance(template, dict):
        raise CLIError(
            f"base job template file {path} must hold a JSON object with the keys "
            f"'job_configuration' and 'variables', not a {type(template).__name__}"
        )
    try:
        for warning in validate_base_job_template(template):
            warn(f"{path}: {warning}")
    except JobTemplateError as exc:
        raise CLIError(f"base job template file {path}: {template_problem(exc)}")
    return template


def type_default_template(worker_type: str) -> dict[str, Any]:
    """The default base job template of a worker type; a CLIError listing known types."""
    try:
        return type_job_template(worker_type)
    except (UnknownWorkerType, WorkerTypeNotInstalled) as exc:
        raise CLIError(str(exc))


def parse_assignment(item: str, option: str) -> tuple[str, str]:
    """`NAME=VALUE` as (NAME, VALUE); a CLIError otherwise."""
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise CLIError(f"{option} must look like NAME=VALUE, not {item!r}")
    return name.strip(), value


@app.command()
def create(
    name: NameArgument,
    worker_type: Annotated[
        str, typer.Option("--type", "-t", help=f"Worker type: {', '.join(known_types())}.")
    ],
    base_job_template: TemplateFileOption = None,
    concurrency_limit: ConcurrencyOption = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    description: DescriptionOption = None,
) -> None:
    """Create a work pool (with the worker type's default job template unless given one)."""
    template = read_template_file(base_job_template) if base_job_template else {}
    # Without a template the server refuses a type it does not know, saying so.
    if template and worker_type not in known_types():
        warn(
            f"skyrun has no worker for type {worker_type!r} (known types: "
            f"{', '.join(known_types())}); the pool needs a worker of that type from elsewhere"
        )
    pool = client().create_work_pool(
        WorkPoolCreate(
            name=name,
            type=worker_type,
            description=description,
            base_job_template=template,
            concurrency_limit=concurrency_limit,
            is_paused=paused,
        )
    )
    typer.echo(f"Created work pool {pool.name!r} (type {pool.type}, {pool.status.value}).")
    typer.echo(f"Start a worker for it: skyrun worker start -p {pool.name} -t {pool.type}")


@app.command("ls")
def list_work_pools(output: OutputOption = OutputFormat.table) -> None:
    """List work pools."""
    pools = client().list_work_pools()
    if output == OutputFormat.json:
        print_json(pools)
        return
    print_table(
        "Work pools",
        ["Name", "Type", "Status", "Concurrency limit", "Description"],
        [(p.name, p.type, p.status.value, p.concurrency_limit, p.description) for p in pools],
    )


def _variable_rows(template: dict[str, Any]) -> list[tuple[Any, ...]]:
    variables = template.get("variables")
    properties = variables.get("properties", {}) if isinstance(variables, dict) else {}
    rows = []
    for variable, schema in properties.items():
        schema = schema if isinstance(schema, dict) else {}
        kind = schema.get("type")
        rows.append(
            (
                variable,
                " | ".join(kind) if isinstance(kind, list) else kind,
                json.dumps(schema["default"]) if "default" in schema else None,
                schema.get("description") or schema.get("title"),
            )
        )
    return rows


@app.command()
def inspect(name: NameArgument, output: OutputOption = OutputFormat.table) -> None:
    """Show a work pool: status, base job template, queues and workers."""
    api = client()
    pool = api.read_work_pool(name)
    queues = api.list_work_queues(name)
    workers = api.list_workers(name)
    if output == OutputFormat.json:
        print_json({**to_jsonable(pool), "work_queues": queues, "workers": workers})
        return
    print_table(
        f"Work pool {pool.name}",
        ["Field", "Value"],
        [
            ("id", pool.id),
            ("type", pool.type),
            ("status", pool.status.value),
            ("concurrency limit", pool.concurrency_limit),
            ("description", pool.description),
            ("created", pool.created),
            ("updated", pool.updated),
        ],
    )
    print_table(
        "Job variables (change a default with 'work-pool update NAME --set VARIABLE=VALUE')",
        ["Variable", "Type", "Default", "Description"],
        _variable_rows(pool.base_job_template),
    )
    typer.echo("Job configuration:")
    stdout_console().print_json(json.dumps(pool.base_job_template.get("job_configuration", {})))
    print_table(
        "Work queues",
        ["Name", "Priority", "Concurrency limit", "Paused", "Last polled"],
        [(q.name, q.priority, q.concurrency_limit, q.is_paused, q.last_polled) for q in queues],
    )
    print_table(
        "Workers",
        ["Name", "Status", "Last heartbeat"],
        [(w.name, w.status.value, w.last_heartbeat) for w in workers],
    )


@app.command()
def update(
    name: NameArgument,
    base_job_template: TemplateFileOption = None,
    concurrency_limit: ConcurrencyOption = None,
    no_concurrency_limit: Annotated[
        bool, typer.Option("--no-concurrency-limit", help="Remove the concurrency limit.")
    ] = False,
    description: DescriptionOption = None,
    set_values: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="VARIABLE=VALUE",
            help="Change a job variable's default (JSON or text; repeatable).",
        ),
    ] = None,
) -> None:
    """Change a work pool's template, variable defaults, concurrency limit or description."""
    if concurrency_limit is not None and no_concurrency_limit:
        raise CLIError("give --concurrency-limit or --no-concurrency-limit, not both")
    # Imported here: jsonschema adds ~25 ms to every CLI command's start-up.
    from skyrun.jobs.templates import JobTemplateError, set_variable_default

    assignments = [parse_assignment(item, "--set") for item in set_values or []]
    api = client()
    changes: dict[str, Any] = {}
    if base_job_template or assignments:
        template = (
            read_template_file(base_job_template)
            if base_job_template
            else api.read_work_pool(name).base_job_template
        )
        for variable, value in assignments:
            try:
                template = set_variable_default(template, variable, value)
            except JobTemplateError as exc:
                raise CLIError(f"work pool {name!r}: {template_problem(exc)}")
        changes["base_job_template"] = template
    if concurrency_limit is not None or no_concurrency_limit:
        changes["concurrency_limit"] = concurrency_limit
    if description is not None:
        changes["description"] = description
    if not changes:
        raise CLIError(
            "nothing to change; give --base-job-template, --set, --concurrency-limit, "
            "--no-concurrency-limit or --description"
        )
    pool = api.update_work_pool(name, WorkPoolUpdate(**changes))
    typer.echo(f"Updated work pool {pool.name!r}: {', '.join(_described(changes, pool))}.")


def _described(changes: dict[str, Any], pool: WorkPool) -> list[str]:
    parts = []
    if "base_job_template" in changes:
        parts.append("base job template")
    if "concurrency_limit" in changes:
        limit = pool.concurrency_limit
        parts.append(f"concurrency limit {limit if limit is not None else 'none'}")
    if "description" in changes:
        parts.append("description")
    return parts


@app.command()
def pause(name: NameArgument) -> None:
    """Pause a work pool: its workers claim no runs until it is resumed."""
    client().update_work_pool(name, WorkPoolUpdate(is_paused=True))
    typer.echo(f"Paused work pool {name!r}; resume it with: skyrun work-pool resume {name}")


@app.command()
def resume(name: NameArgument) -> None:
    """Resume a paused work pool."""
    pool = client().update_work_pool(name, WorkPoolUpdate(is_paused=False))
    typer.echo(f"Resumed work pool {pool.name!r} ({pool.status.value}).")


@app.command()
def delete(name: NameArgument) -> None:
    """Delete a work pool with its queues."""
    client().delete_work_pool(name)
    typer.echo(f"Deleted work pool {name!r}.")


@app.command("get-default-base-job-template")
def get_default_base_job_template(
    worker_type: Annotated[
        str, typer.Option("--type", "-t", help=f"Worker type: {', '.join(known_types())}.")
    ],
    file: Annotated[
        str | None, typer.Option("--file", "-f", help="Write it to this file instead.")
    ] = None,
) -> None:
    """Print a worker type's default base job template as JSON (or write it to a file)."""
    text = json.dumps(type_default_template(worker_type), indent=2) + "\n"
    if file is None:
        typer.echo(text, nl=False)
        return
    try:
        Path(file).write_text(text)
    except OSError as exc:
        raise CLIError(f"cannot write {file}: {exc.strerror or exc}")
    typer.echo(f"Wrote the default base job template for {worker_type!r} to {file}")


@app.command()
def preview(
    name: NameArgument,
    hours: Annotated[
        float, typer.Option("--hours", help="How far ahead to look, in hours.")
    ] = 24.0,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the runs scheduled on this work pool within the next hours."""
    if hours <= 0:
        raise CLIError(f"--hours must be more than 0, not {hours:g}")
    runs = client().preview_scheduled_runs(name, hours=hours, limit=1000)
    if output == OutputFormat.json:
        print_json(runs)
        return
    print_table(
        f"Runs scheduled on {name} in the next {hours:g} hours",
        ["Scheduled for", "Flow", "Deployment", "Run", "Queue", "ID"],
        [
            (
                run.expected_start_time,
                run.flow_name,
                run.deployment_name,
                run.name,
                run.work_queue_name,
                run.id,
            )
            for run in runs
        ],
        caption=f"{len(runs)} run(s)",
    )
