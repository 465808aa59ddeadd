"""What every CLI command shares: JSON and table output, the `-o` option, id parsing, the client."""

from __future__ import annotations

import enum
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import TypeAdapter

from skyrun.cli.errors import CLIError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from skyrun.client.client import SkyrunClient

# Serializes models, lists of models, datetimes and UUIDs by their runtime type.
_ANY = TypeAdapter(Any)

# Piped output is for grep and scripts: do not wrap table rows at 80 columns.
_PIPED_WIDTH = 200

# The API's largest page.
MAX_LIMIT = 1000

# What user text must not carry to a terminal: C0 and C1 control characters (ESC
# starts the sequences that clear a screen or retitle a window; \x9b is a one-byte
# CSI) and the bidirectional overrides that make text read differently than it is.
_UNSAFE_CHARACTERS = "\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[{_UNSAFE_CHARACTERS}]")
_UNSAFE_BUT_LINES = re.compile(f"(?![\n\t])[{_UNSAFE_CHARACTERS}]")


class OutputFormat(enum.StrEnum):
    """How a command prints its result."""

    table = "table"
    json = "json"


def _output_format(value: str) -> OutputFormat:
    # A CLIError, not click's usage error: one line naming the choices.
    try:
        return OutputFormat(value.lower())
    except ValueError:
        choices = " or ".join(repr(f.value) for f in OutputFormat)
        raise CLIError(f"--output must be {choices}, not {value!r}") from None


# Declared as str so any value reaches the callback; commands receive an OutputFormat.
OutputOption = Annotated[
    str,
    typer.Option(
        "--output",
        "-o",
        callback=_output_format,
        metavar="[table|json]",
        help="Print a human-readable table, or JSON for scripts.",
    ),
]


def _check_limit(value: int) -> int:
    if not 1 <= value <= MAX_LIMIT:
        raise CLIError(f"--limit must be between 1 and {MAX_LIMIT}, not {value}")
    return value


LimitOption = Annotated[
    int, typer.Option("--limit", callback=_check_limit, help=f"How many to show (1-{MAX_LIMIT}).")
]


def to_jsonable(obj: Any) -> Any:
    """Plain JSON data from pydantic models (or lists and dicts of them); datetimes as ISO."""
    return _ANY.dump_python(obj, mode="json")


def print_json(obj: Any) -> None:
    """Print `obj` as pretty JSON on stdout."""
    typer.echo(json.dumps(to_jsonable(obj), indent=2))


def safe_text(text: str, *, multiline: bool = False) -> str:
    """User text as the CLI prints it: control characters shown as escapes (`\\x1b`).

    Names, messages and log lines come from whoever can reach the API; printed as
    they are, they could clear the operator's screen or retitle the window.

    Args:
        text: the text to print.
        multiline: keep newlines and tabs (log lines, tracebacks, descriptions).
    """
    pattern = _UNSAFE_BUT_LINES if multiline else _UNSAFE
    return pattern.sub(lambda match: match.group().encode("unicode_escape").decode(), text)


def format_datetime(value: datetime | None) -> str:
    """A timestamp in local time, to the second; '-' when there is none."""
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _cell(value: Any) -> Text:
    # Text, not str: user data such as "[bold]" must not be read as rich markup.
    from rich.text import Text

    if value is None:
        return Text("-")
    if isinstance(value, datetime):
        return Text(format_datetime(value))
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, list | tuple):
        return Text(safe_text(", ".join(str(item) for item in value)) or "-")
    return Text(safe_text(str(value), multiline=True))


def stdout_console() -> Console:
    """A console on stdout that never highlights and does not wrap when piped."""
    # rich is imported where it prints: commands that only echo a line (such as
    # `deployment run`, on the path of every run started by hand) skip ~20 ms.
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, _PIPED_WIDTH)
    return console


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    caption: str | None = None,
) -> None:
    """Print rows as a rich table; None shows as '-', datetimes in local time.

    Args:
        title: shown above the table.
        columns: the column headers.
        rows: one sequence of cell values per row, in column order.
        caption: shown below the table, e.g. "20 of 53 shown".
    """
    from rich.table import Table
    from rich.text import Text

    # Titles name things ("Flow run <name>"): as escaped, and as literal, as the cells.
    table = Table(
        title=Text(safe_text(title)) if title is not None else None,
        caption=Text(safe_text(caption)) if caption is not None else None,
        title_justify="left",
        caption_justify="left",
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    stdout_console().print(table)


def warn(message: str) -> None:
    """Print `message` as one `Warning:` line on stderr (never read as rich markup)."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"[yellow]Warning:[/yellow] {escape(safe_text(message, multiline=True))}")


def parse_uuid(value: str, what: str) -> uuid.UUID:
    """`value` as a UUID, or a CLIError saying which argument is not one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CLIError(f"{what} must be a UUID, not {value!r}") from None


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def client() -> SkyrunClient:
    """The client for the configured API (embedded when SKYRUN_API_URL is unset)."""
    # Imported here: httpx and the client add ~0.15 s to commands that need no API
    # (`skyrun config`, `skyrun server start`, `skyrun version`).
    from skyrun.client.client import get_client

    return get_client()
