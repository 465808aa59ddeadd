"""`skyrun artifact`: list artifacts and show one (by id, or the latest version of a key)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from skyrun.cli.errors import CLIError
from skyrun.cli.output import (
    LimitOption,
    OutputFormat,
    OutputOption,
    client,
    format_datetime,
    is_uuid,
    parse_uuid,
    print_json,
    print_table,
)
from skyrun.schemas.artifacts import Artifact

if TYPE_CHECKING:
    from skyrun.client.client import SkyrunClient

app = typer.Typer(help="List and inspect artifacts.", no_args_is_help=True)

PREVIEW_CHARS = 60
MAX_VERSIONS = 1000


def preview(data: Any) -> str:
    """The start of an artifact's data, on one line."""
    text = data if isinstance(data, str) else json.dumps(data, default=str)
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def list_versions(api: SkyrunClient, key: str) -> list[Artifact]:
    page = api.list_artifacts(key=key, latest_only=False, limit=MAX_VERSIONS)
    if not page.items:
        raise CLIError(f"no artifact has the key {key!r}; see 'skyrun artifact ls'")
    return page.items


def print_artifacts(title: str, artifacts: list[Artifact], caption: str | None = None) -> None:
    print_table(
        title,
        ["ID", "Key", "Type", "Created", "Flow run", "Latest", "Data"],
        [
            (a.id, a.key, a.type, a.created, a.flow_run_id, a.is_latest, preview(a.data))
            for a in artifacts
        ],
        caption=caption,
    )


@app.command("ls")
def list_artifacts(
    key: Annotated[str | None, typer.Option("--key", help="Only artifacts with this key.")] = None,
    flow_run: Annotated[
        str | None, typer.Option("--flow-run", metavar="ID", help="Only this flow run's artifacts.")
    ] = None,
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="Every version of each key, not just the latest.")
    ] = False,
    limit: LimitOption = 50,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List artifacts, newest first (the latest version of each key unless --all-versions)."""
    flow_run_id = parse_uuid(flow_run, "flow run id") if flow_run is not None else None
    page = client().list_artifacts(
        key=key, flow_run_id=flow_run_id, latest_only=not all_versions, limit=limit
    )
    if output == OutputFormat.json:
        print_json(page.items)
        return
    print_artifacts("Artifacts", page.items, caption=f"{len(page.items)} of {page.count} shown")


def print_artifact(artifact: Artifact) -> None:
    typer.echo(f"id:          {artifact.id}")
    typer.echo(f"key:         {artifact.key or '-'}")
    typer.echo(f"type:        {artifact.type}")
    typer.echo(f"created:     {format_datetime(artifact.created)}")
    typer.echo(f"flow run:    {artifact.flow_run_id or '-'}")
    typer.echo(f"task run:    {artifact.task_run_id or '-'}")
    if artifact.description:
        typer.echo(f"description: {artifact.description}")
    typer.echo("")
    if artifact.type == "table" and isinstance(artifact.data, list) and artifact.data:
        rows = artifact.data
        if all(isinstance(row, dict) for row in rows):
            columns = list(dict.fromkeys(column for row in rows for column in row))
            print_table(None, columns, [[row.get(c) for c in columns] for row in rows])
            return
    if isinstance(artifact.data, str):
        typer.echo(artifact.data)
    else:
        typer.echo(json.dumps(artifact.data, indent=2, default=str))


@app.command()
def inspect(
    key_or_id: Annotated[
        str, typer.Argument(metavar="KEY_OR_ID", help="An artifact id, or a key for its latest.")
    ],
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="List every version of the key.")
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show an artifact: by id, or the latest version of a key."""
    api = client()
    if all_versions:
        key = api.read_artifact(key_or_id).key if is_uuid(key_or_id) else key_or_id
        if key is None:
            raise CLIError(f"artifact {key_or_id} has no key, so it has no other versions")
        versions = list_versions(api, key)
        if output == OutputFormat.json:
            print_json(versions)
        else:
            print_artifacts(f"Versions of {key}", versions)
        return
    if is_uuid(key_or_id):
        artifact = api.read_artifact(key_or_id)
    else:
        artifact = api.read_latest_artifact(key_or_id)
    if output == OutputFormat.json:
        print_json(artifact)
    else:
        print_artifact(artifact)
