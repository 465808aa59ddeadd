"""`skyrun flow-run execute [ID]`: run a deployment's flow run in this process."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from skyrun.cli.errors import CLIError


def execute(
    flow_run_id: Annotated[
        str | None,
        typer.Argument(help="The flow run to execute (default: $SKYRUN_FLOW_RUN_ID)."),
    ] = None,
) -> None:
    """Execute a deployment's flow run here (what a worker's infrastructure runs)."""
    # Deferred import: the flow engine is only needed by this command.
    from skyrun.sdk.execute import ExecutionError, execute_flow_run

    run_id = flow_run_id or os.environ.get("SKYRUN_FLOW_RUN_ID")
    if not run_id:
        raise CLIError("give a flow run id, or set SKYRUN_FLOW_RUN_ID")
    try:
        code = execute_flow_run(run_id)
    except ExecutionError as exc:
        raise CLIError(str(exc))
    sys.exit(code)


def register(app: typer.Typer) -> None:
    """Add `execute` to the `flow-run` command group."""
    app.command("execute")(execute)
