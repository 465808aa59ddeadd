"""`skyrun variable`: set, read, list and remove variables (named JSON values)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from skyrun.cli.errors import CLIError
from skyrun.cli.output import (
    LimitOption,
    OutputFormat,
    OutputOption,
    client,
    print_json,
    print_table,
    safe_text,
)
from skyrun.schemas.variables import check_variable_name
from skyrun.values import parse_value

app = typer.Typer(help="Set, read, list and remove variables.", no_args_is_help=True)

NameArgument = Annotated[
    str, typer.Argument(help="Lower-case letters, digits, '_' and '-'.", show_default=False)
]


def render_value(value: Any) -> str:
    """A string as is (control characters escaped); anything else as JSON."""
    return safe_text(value, multiline=True) if isinstance(value, str) else json.dumps(value)


def checked_name(name: str) -> str:
    try:
        return check_variable_name(name)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


@app.command("set")
def set_(
    name: NameArgument,
    value: Annotated[str, typer.Argument(help="JSON (42, true, [1, 2]) or plain text.")],
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="A tag for the variable (repeatable).")
    ] = None,
) -> None:
    """Create or replace a variable."""
    variable = client().set_variable(checked_name(name), parse_value(value), tags=tag or [])
    typer.echo(f"Set variable {variable.name} = {render_value(variable.value)}")


@app.command()
def get(name: NameArgument, output: OutputOption = OutputFormat.table) -> None:
    """Print a variable's value (strings as they are, other values as JSON)."""
    variable = client().read_variable(checked_name(name))
    if output == OutputFormat.json:
        print_json(variable)
    else:
        typer.echo(render_value(variable.value))


@app.command("ls")
def list_variables(
    limit: LimitOption = 100,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List variables by name."""
    page = client().list_variables(limit=limit)
    if output == OutputFormat.json:
        print_json(page.items)
        return
    print_table(
        "Variables",
        ["Name", "Value", "Tags", "Updated"],
        [(v.name, render_value(v.value), v.tags, v.updated) for v in page.items],
        caption=f"{len(page.items)} of {page.count} shown",
    )


@app.command()
def unset(name: NameArgument) -> None:
    """Remove a variable."""
    client().delete_variable(checked_name(name))
    typer.echo(f"Unset variable {name}")
