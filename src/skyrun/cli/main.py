"""The `skyrun` entry point: assembles the command groups and reports user errors."""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, NoReturn

from pydantic import ValidationError

from skyrun.cli.errors import CLIError
from skyrun.client.errors import ServerUnreachable, SkyrunAPIError

if TYPE_CHECKING:
    import typer

# Command groups by name. Only the group a command line names is imported (a
# worker starts every flow run with `skyrun flow-run execute`, so start-up time
# is run latency); help and unknown names load them all.
GROUPS = {
    "server": "skyrun.cli.server",
    "config": "skyrun.cli.config",
    "flow-run": "skyrun.cli.flow_runs",
    "task-run": "skyrun.cli.task_runs",
    "artifact": "skyrun.cli.artifacts",
    "variable": "skyrun.cli.variables",
    "api-key": "skyrun.cli.api_keys",
    "worker": "skyrun.cli.worker",
    "work-pool": "skyrun.cli.work_pools",
    "work-queue": "skyrun.cli.work_queues",
    "deployment": "skyrun.cli.deployments",
    "block": "skyrun.cli.blocks",
    "cloud-run": "skyrun.cli.cloud_run",
}
# Top-level commands by name -> "module:function", imported the same way.
COMMANDS = {
    "init": "skyrun.cli.init:init_command",
    "deploy": "skyrun.cli.deploy:deploy_command",
}


def version() -> None:
    """Print skyrun's version."""
    import typer

    from skyrun._version import __version__

    typer.echo(__version__)


def build_app(only: str | None = None) -> typer.Typer:
    """The CLI with every command group, or only `only` (and `version`)."""
    import typer

    root = typer.Typer(
        name="skyrun",
        help="skyrun: run Python flows on work pools, workers and Cloud Run.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for name, module_name in GROUPS.items():
        if only is None or name == only:
            group = importlib.import_module(module_name).app
            root.add_typer(group, name=name)
            if name == "flow-run":
                from skyrun.cli import execute

                execute.register(group)
    for name, target in COMMANDS.items():
        if only is None or name == only:
            module_name, function_name = target.split(":")
            function = getattr(importlib.import_module(module_name), function_name)
            root.command(name)(function)
    root.command()(version)
    # A callback keeps `skyrun` a group even when it holds one command.
    root.callback()(_no_options)
    return root


def _no_options() -> None:
    pass


_full_app: typer.Typer | None = None


def __getattr__(name: str) -> typer.Typer:
    # `skyrun.cli.main.app`: the whole CLI, built on first use.
    global _full_app
    if name != "app":
        raise AttributeError(name)
    if _full_app is None:
        _full_app = build_app()
    return _full_app


def run() -> None:
    """Run the CLI; user errors print one line on stderr and exit 1.

    Typer runs in standalone mode, so it handles its own errors as it always
    does: a usage error (missing argument, bad value, unknown option or command)
    prints the usage and the error and exits 2, a group called bare prints its
    help (exit 2, as Typer does), `typer.Exit(code)` exits with `code` and
    Ctrl-C exits 130. The errors below are the ones Typer passes on.
    """
    try:
        _dispatch()
    except (CLIError, ServerUnreachable) as exc:
        exit_with_error(str(exc))
    except SkyrunAPIError as exc:
        exit_with_error(f"{exc.detail} (HTTP {exc.status_code})")
    except ValidationError as exc:
        exit_with_error(f"invalid input: {exc.errors()[0].get('msg')}")
    except ValueError as exc:
        exit_with_error(str(exc))


def _dispatch() -> None:
    args = sys.argv[1:]
    plain_execute = args[:2] == ["flow-run", "execute"] and len(args) <= 3
    if plain_execute and not any(arg.startswith("-") for arg in args[2:]):
        # What every flow run starts with: straight to the engine, no Typer.
        from skyrun.sdk.execute import main as execute_main

        sys.exit(execute_main(args[2:]))
    named = args[0] if args else None
    # `version` needs no group; help and unknown names load them all.
    only = "" if named == "version" else named if named in GROUPS or named in COMMANDS else None
    app = _full_app or build_app(only)
    app()


def exit_with_error(message: str) -> NoReturn:
    """Print `message` as one `Error:` line on stderr, exactly as written, and exit 1."""
    from rich.console import Console
    from rich.markup import escape

    from skyrun.cli.output import safe_text

    # soft_wrap: a long message is left to the terminal, not broken into lines mid-word.
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    # Messages quote user input and names such as "skyrun[gcp]": never rich markup.
    # ...and they may quote what the API holds, which anyone who reaches it wrote.
    err.print(f"[red]Error:[/red] {escape(safe_text(message, multiline=True))}")
    sys.exit(1)


if __name__ == "__main__":
    run()
