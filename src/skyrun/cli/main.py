"""The `skyrun` entry point: assembles the command groups and reports user errors."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError
from rich.console import Console

from skyrun.cli import (
    api_keys,
    artifacts,
    config,
    deployments,
    execute,
    flow_runs,
    server,
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
    """Run the CLI; user errors print one line on stderr and exit 1."""
    err = Console(stderr=True, highlight=False)
    try:
        app(standalone_mode=False)
    except (CLIError, ServerUnreachable) as exc:
        err.print(f"[red]Error:[/red] {exc}")
        sys.exit(1)
    except SkyrunAPIError as exc:
        err.print(f"[red]Error:[/red] {exc.detail} (HTTP {exc.status_code})")
        sys.exit(1)
    except ValidationError as exc:
        err.print(f"[red]Error:[/red] invalid input: {exc.errors()[0].get('msg')}")
        sys.exit(1)
    except ValueError as exc:
        err.print(f"[red]Error:[/red] {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors and friends
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":
    run()
