"""`skyrun api-key`: create, list and revoke the API keys a server with auth accepts."""

from __future__ import annotations

from typing import Annotated

import typer

from skyrun.cli.output import OutputFormat, OutputOption, client, print_json, print_table

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="A name to recognise the key by.")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Create an API key and print it; it cannot be shown again."""
    created = client().create_api_key(name)
    if output == OutputFormat.json:
        print_json(created)
        return
    typer.echo(f"Created API key {created.name!r} (prefix {created.prefix}):")
    typer.echo("")
    typer.echo(f"    {created.key}")
    typer.echo("")
    typer.echo(
        "Store it now (e.g. as SKYRUN_API_KEY): only its hash is kept, so it cannot be shown again."
    )


@app.command("ls")
def list_api_keys(output: OutputOption = OutputFormat.table) -> None:
    """List API keys (never the keys themselves)."""
    keys = client().list_api_keys()
    if output == OutputFormat.json:
        print_json(keys)
        return
    print_table(
        "API keys",
        ["Name", "Prefix", "Created", "Last used", "Revoked"],
        [(k.name, k.prefix, k.created, k.last_used, k.revoked) for k in keys],
    )


@app.command()
def revoke(
    name: Annotated[str, typer.Argument(help="The key's name (or its prefix).")],
) -> None:
    """Revoke an API key: the server refuses it from now on."""
    revoked = client().revoke_api_key(name)
    typer.echo(f"Revoked API key {revoked.name!r} (prefix {revoked.prefix})")
