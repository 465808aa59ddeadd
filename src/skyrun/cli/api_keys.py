"""`skyrun api-key`: create, list and revoke the API keys a server with auth accepts.

Managing keys needs an admin key. The first one is made without any: run
`skyrun api-key create NAME --scope admin` on the server's machine with the
server's database settings (SKYRUN_HOME or SKYRUN_DATABASE_URL) and no
SKYRUN_API_URL, which opens the database directly.
"""

from __future__ import annotations

from typing import Annotated

import typer

from skyrun.cli.output import OutputFormat, OutputOption, client, print_json, print_table
from skyrun.schemas.api_keys import ApiKeyScope, highest_scope

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="A name to recognise the key by.")],
    scope: Annotated[
        ApiKeyScope,
        typer.Option(
            "--scope",
            case_sensitive=False,
            help="read: GETs and filters; write: all but API keys and block secrets; "
            "secrets: write and reading block secrets (workers and flows using blocks); "
            "admin: everything.",
        ),
    ] = ApiKeyScope.WRITE,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Create an API key and print it; it cannot be shown again."""
    api = client()
    created = api.create_api_key(name, scope)
    if output == OutputFormat.json:
        print_json(created)
        return
    typer.echo(
        f"Created API key {created.name!r} with scope {highest_scope(created.scopes)} "
        f"(id {created.id}):"
    )
    typer.echo("")
    typer.echo(f"    {created.key}")
    typer.echo("")
    typer.echo(
        "Store it now (e.g. as SKYRUN_API_KEY): only its hash is kept, so it cannot be shown again."
    )
    if api.embedded:
        typer.echo(
            f"(Made in the database at {api.api_url.split('@')[-1]}; a server on "
            "that database accepts it.)"
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
        ["Name", "ID", "Prefix", "Scope", "Created", "Last used", "Revoked"],
        [
            (k.name, k.id, k.prefix, highest_scope(k.scopes), k.created, k.last_used, k.revoked)
            for k in keys
        ],
        caption="Last used is kept to the minute.",
    )


@app.command()
def revoke(
    name_or_id: Annotated[
        str, typer.Argument(metavar="NAME_OR_ID", help="The key's name or its full id.")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Revoke it even if it is the last admin key.")
    ] = False,
) -> None:
    """Revoke an API key: the server refuses it from now on."""
    revoked = client().revoke_api_key(name_or_id, force=force)
    typer.echo(f"Revoked API key {revoked.name!r} (id {revoked.id}).")
