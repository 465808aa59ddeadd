"""`skyrun block`: block types, and creating, listing, inspecting, updating and deleting blocks.

A block is addressed as TYPE/NAME (`gcp-credentials/my-creds`). Secrets are masked in
everything this prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from skyrun.blocks.fields import FieldError, parse_fields, read_data_file
from skyrun.blocks.references import BlockReferenceError, parse_block_reference
from skyrun.cli.errors import CLIError
from skyrun.cli.output import (
    LimitOption,
    OutputFormat,
    OutputOption,
    client,
    print_json,
    print_table,
)
from skyrun.client.client import SkyrunClient
from skyrun.client.errors import ObjectNotFound
from skyrun.schemas.blocks import BlockDocument, BlockType, check_block_name

app = typer.Typer(help="Manage blocks: typed configuration with secrets.", no_args_is_help=True)

FieldOption = Annotated[
    list[str] | None,
    typer.Option(
        "--field",
        "-f",
        help="KEY=VALUE (repeatable); @PATH reads the value from a file, "
        "e.g. service_account_info=@key.json.",
    ),
]
ReferenceArgument = Annotated[
    str, typer.Argument(help="The block as TYPE/NAME, e.g. gcp-credentials/my-creds.")
]


def _block_type(api: SkyrunClient, slug: str) -> BlockType:
    try:
        return api.read_block_type(slug)
    except ObjectNotFound:
        known = ", ".join(t.slug for t in api.list_block_types())
        raise CLIError(f"unknown block type {slug!r}; the types are: {known}") from None


def _reference(text: str) -> tuple[str, str]:
    try:
        return parse_block_reference(text)
    except BlockReferenceError as exc:
        raise CLIError(str(exc)) from None


def _data(block_type: BlockType, fields: list[str] | None, file: Path | None) -> dict[str, Any]:
    try:
        data = read_data_file(file) if file is not None else {}
        data.update(parse_fields(fields or [], block_type.slug, block_type.block_schema))
    except FieldError as exc:
        raise CLIError(str(exc)) from None
    return data


def _show(block: BlockDocument, output: str) -> None:
    if output == OutputFormat.json:
        print_json(block)
        return
    print_table(
        f"Block {block.block_type}/{block.name}",
        ["Field", "Value"],
        [
            (key, value if isinstance(value, str) else json.dumps(value))
            for key, value in block.data.items()
        ],
    )


@app.command("types")
def list_types(output: OutputOption = OutputFormat.table) -> None:
    """List the block types and their fields (secret ones marked *)."""
    types = client().list_block_types()
    if output == OutputFormat.json:
        print_json(types)
        return
    print_table(
        "Block types",
        ["Type", "Title", "Fields", "Description"],
        [
            (
                t.slug,
                t.title,
                ", ".join(
                    name + ("*" if name in t.secret_fields else "")
                    for name in t.block_schema.get("properties", {})
                ),
                t.description,
            )
            for t in types
        ],
        caption="* secret: encrypted at rest, masked when shown",
    )


@app.command()
def create(
    block_type: Annotated[str, typer.Argument(metavar="TYPE", help="A type from 'block types'.")],
    name: Annotated[str, typer.Argument(help="Lower-case letters, digits, '_' and '-'.")],
    field: FieldOption = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="A JSON file of the block's fields.")
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Create a block from --field KEY=VALUE options or a JSON --file (or both)."""
    try:
        check_block_name(name)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    api = client()
    data = _data(_block_type(api, block_type), field, file)
    block = api.create_block(block_type, name, data)
    if output == OutputFormat.json:
        print_json(block)
    else:
        typer.echo(f"Created block {block.block_type}/{block.name}")


@app.command("ls")
def list_blocks(
    block_type: Annotated[
        str | None, typer.Option("--type", help="Only blocks of this type.")
    ] = None,
    limit: LimitOption = 100,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List blocks by type and name."""
    page = client().list_blocks(block_type, limit=limit)
    if output == OutputFormat.json:
        print_json(page.items)
        return
    print_table(
        "Blocks",
        ["Block", "Fields", "Updated"],
        [(f"{b.block_type}/{b.name}", ", ".join(b.data), b.updated) for b in page.items],
        caption=f"{len(page.items)} of {page.count} shown",
    )


@app.command()
def inspect(reference: ReferenceArgument, output: OutputOption = OutputFormat.table) -> None:
    """Show a block's fields, secrets masked."""
    block_type, name = _reference(reference)
    _show(client().read_block(block_type, name), output)


@app.command()
def update(
    reference: ReferenceArgument,
    field: FieldOption = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="A JSON file of fields to change.")
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Change some fields (VALUE null clears one); the others, secrets too, stay."""
    block_type, name = _reference(reference)
    api = client()
    changes = _data(_block_type(api, block_type), field, file)
    if not changes:
        raise CLIError("nothing to change; give --field KEY=VALUE or --file")
    block = api.update_block(block_type, name, changes)
    if output == OutputFormat.json:
        print_json(block)
    else:
        typer.echo(f"Updated block {block.block_type}/{block.name}: {', '.join(changes)}")


@app.command()
def delete(reference: ReferenceArgument) -> None:
    """Delete a block."""
    block_type, name = _reference(reference)
    client().delete_block(block_type, name)
    typer.echo(f"Deleted block {block_type}/{name}")
