"""`skyrun flow-run execute`: run a deployment's flow run in this process.

This is what a worker's infrastructure runs: read the run and its deployment,
run the pull steps, import the entrypoint, and run the flow under the existing
run id. Anything that goes wrong before the flow starts makes the run FAILED
with a message that says what to fix. It is on the path from "run the
deployment" to "the flow's first line", so it imports only what it needs.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import sys
import traceback
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from skyrun.client.client import SkyrunClient, get_client
from skyrun.client.errors import ObjectNotFound, SkyrunAPIError
from skyrun.deploy.steps import StepError, run_steps
from skyrun.jobs.exit_codes import ABORTED_EXIT_CODE
from skyrun.schemas.core import FlowRun
from skyrun.schemas.deployments import Deployment
from skyrun.schemas.states import StateCreate, StateType
from skyrun.sdk import flow_engine
from skyrun.sdk.flows import Flow
from skyrun.sdk.parameters import ParameterError
from skyrun.templating import References


class EntrypointError(Exception):
    """The entrypoint cannot be imported or is not a flow; the message names it."""


class ExecutionError(Exception):
    """The run cannot be executed (unknown run, no deployment, bad steps or entrypoint)."""


def _import_file(entrypoint: str, file_part: str) -> ModuleType:
    path = Path(file_part)
    if not path.is_file():
        raise EntrypointError(
            f"entrypoint {entrypoint!r}: file {str(path.resolve())!r} does not exist "
            f"(working directory {os.getcwd()!r}); fix the entrypoint or the pull steps"
        )
    path = path.resolve()
    # Like `python file.py`: the flow's own folder comes first, so its sibling modules import.
    sys.path.insert(0, str(path.parent))
    name = (
        path.stem
        if path.stem.isidentifier() and path.stem not in sys.modules
        else (f"__skyrun_entrypoint_{uuid.uuid4().hex[:8]}")
    )
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise EntrypointError(f"entrypoint {entrypoint!r}: {str(path)!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_flow(entrypoint: str) -> Flow[Any, Any]:
    """The flow an entrypoint names: `path/to/file.py:func` (relative to the working
    directory) or `package.module:func`.

    Raises:
        EntrypointError: It cannot be imported, has no such attribute, or is not a flow.
    """
    module_part, sep, attribute = entrypoint.rpartition(":")
    if not sep or not module_part or not attribute:
        raise EntrypointError(
            f"entrypoint {entrypoint!r} must look like 'path/to/file.py:function' or "
            "'package.module:function'"
        )
    is_file = module_part.endswith(".py") or "/" in module_part or os.sep in module_part
    try:
        if is_file:
            module = _import_file(entrypoint, module_part)
        else:
            module = importlib.import_module(module_part)
    except EntrypointError:
        raise
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        traceback.print_exc()
        raise EntrypointError(
            f"entrypoint {entrypoint!r}: importing {module_part!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    try:
        flow = getattr(module, attribute)
    except AttributeError:
        raise EntrypointError(
            f"entrypoint {entrypoint!r}: {module_part!r} has no attribute {attribute!r}"
        ) from None
    if not isinstance(flow, Flow):
        raise EntrypointError(
            f"entrypoint {entrypoint!r}: {attribute!r} is a {type(flow).__name__}, not a "
            "skyrun flow; decorate it with @flow"
        )
    return flow


def _fail(client: SkyrunClient, run: FlowRun, message: str) -> None:
    print(f"skyrun: flow run {run.id} cannot run: {message}", file=sys.stderr, flush=True)
    client.set_flow_run_state(
        run.id,
        StateCreate(type=StateType.FAILED, message=message),
        retry_for=client.settings.final_state_timeout,
    )


def _prepare(client: SkyrunClient, run: FlowRun) -> tuple[Deployment, Flow[Any, Any]]:
    """Pull steps and entrypoint; raises ExecutionError after marking the run FAILED."""
    if run.deployment_id is None:
        message = "it has no deployment, so there is no entrypoint to execute"
        _fail(client, run, message)
        raise ExecutionError(message)
    deployment = client.read_deployment(run.deployment_id)
    try:
        if deployment.pull_steps:
            references = References(
                env=os.environ, variables=client.variable_value, blocks=client.block_value
            )
            try:
                run_steps(deployment.pull_steps, references=references)
            except SkyrunAPIError as exc:
                # A block a step names could not be read (e.g. the key lacks scope `secrets`).
                raise StepError(f"cannot read what it names: {exc.detail}") from exc
        elif deployment.path and os.path.isdir(deployment.path):
            os.chdir(deployment.path)
        flow = load_flow(deployment.entrypoint)
    except StepError as exc:
        message = f"pull step failed: {exc}"
        _fail(client, run, message)
        raise ExecutionError(message) from exc
    except EntrypointError as exc:
        _fail(client, run, str(exc))
        raise ExecutionError(str(exc)) from exc
    return deployment, flow


def execute_flow_run(flow_run_id: uuid.UUID | str, client: SkyrunClient | None = None) -> int:
    """Run a deployment's flow run here; returns the exit code: 0 when COMPLETED,
    ABORTED_EXIT_CODE when another process is handling the run, 1 otherwise.

    Raises:
        ExecutionError: The run does not exist.
    """
    client = client or get_client()
    try:
        # Launched by a worker that just reached the API: a server restarting at this
        # moment is waited for, not a reason to fail the run.
        run = client.read_flow_run(flow_run_id, retry_for=client.settings.client_retry_seconds)
    except ObjectNotFound:
        raise ExecutionError(f"flow run {flow_run_id} does not exist") from None
    if run.state is not None and run.state.is_final:
        print(f"skyrun: flow run {run.id} is already {run.state.type.value}", file=sys.stderr)
        return 0 if run.state.type == StateType.COMPLETED else 1
    try:
        deployment, flow = _prepare(client, run)
    except ExecutionError:
        return 1
    parameters = {**deployment.parameters, **run.parameters}
    try:
        if flow.is_async:
            asyncio.run(flow_engine.run_flow_async(flow, (), parameters, flow_run_id=run.id))
        else:
            flow_engine.run_flow(flow, (), parameters, flow_run_id=run.id)
    except flow_engine.FlowRunAborted as exc:
        print(f"skyrun: {exc}", file=sys.stderr)
        return ABORTED_EXIT_CODE
    except (flow_engine.FlowRunCancelled, ParameterError):
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    final = client.read_flow_run(run.id).state
    return 0 if final is not None and final.type == StateType.COMPLETED else 1


def main(argv: list[str] | None = None) -> int:
    """`python -m skyrun.sdk.execute [ID]`: `skyrun flow-run execute` without the CLI's imports."""
    args = sys.argv[1:] if argv is None else argv
    run_id = args[0] if args else os.environ.get("SKYRUN_FLOW_RUN_ID")
    if not run_id:
        print("Error: give a flow run id, or set SKYRUN_FLOW_RUN_ID", file=sys.stderr)
        return 1
    try:
        return execute_flow_run(run_id)
    except ExecutionError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
