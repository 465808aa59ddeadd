"""The `skyrun` entry point: assembles the command groups and reports user errors."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from skyrun.cli import (
    api_keys,
    artifacts,
    config,
    deployments,
    execute,
    flow_runs,
    server,
    task_runs,
    variables,
    work_pools,
    work_queues,
    worker,
)
from skyrun.cli.errors import CLIError
from skyrun.client.errors import ServerUnreachable, SkyrunAPIError

app = typer.Typer(
    name="skyrun",
    help="skyrun: run Python flows on work pools, workers and Cloud Run.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(server.app, name="server")
app.add_typer(config.app, name="config")
app.add_typer(flow_runs.app, name="flow-run")
app.add_typer(task_runs.app, name="task-run")
app.add_typer(artifacts.app, name="artifact")
app.add_typer(variables.app, name="variable")
app.add_typer(api_keys.app, name="api-key")
app.add_typer(worker.app, name="worker")
app.add_typer(work_pools.app, name="work-pool")
app.add_typer(work_queues.app, name="work-queue")
app.add_typer(deployments.app, name="deployment")
execute.register(flow_runs.app)


@app.command()
def version() -> None:
    """Print skyrun's version."""
    from skyrun._version import __version__

    typer.echo(__version__)


def run() -> None:
    """Run the CLI; user errors print one line on stderr and exit 1.

    Typer runs in standalone mode, so it handles its own errors as it always
    does: a usage error (missing argument, bad value, unknown option or command)
    prints the usage and the error and exits 2, a group called bare prints its
    help (exit 2, as Typer does), `typer.Exit(code)` exits with `code` and
    Ctrl-C exits 130. The errors below are the ones Typer passes on.
    """
    try:
        app()
    except (CLIError, ServerUnreachable) as exc:
        exit_with_error(str(exc))
    except SkyrunAPIError as exc:
        exit_with_error(f"{exc.detail} (HTTP {exc.status_code})")
    except ValidationError as exc:
        exit_with_error(f"invalid input: {exc.errors()[0].get('msg')}")
    except ValueError as exc:
        exit_with_error(str(exc))


def exit_with_error(message: str) -> NoReturn:
    """Print `message` as one `Error:` line on stderr, exactly as written, and exit 1."""
    # soft_wrap: a long message is left to the terminal, not broken into lines mid-word.
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    # Messages quote user input and names such as "skyrun[gcp]": never rich markup.
    err.print(f"[red]Error:[/red] {escape(message)}")
    sys.exit(1)


if __name__ == "__main__":
    run()
