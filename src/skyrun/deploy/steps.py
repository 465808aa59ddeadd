"""Deployment steps (pull steps today; build and push steps later) and a runner for them.

A step is a one-key mapping: `{"set_working_directory": {"directory": "/app"}}`.
Its name is looked up in `STEPS`; a dotted name is accepted by its last part
(`skyrun.deploy.steps.run_shell_script`). Each step returns a dict of outputs.
"""

from __future__ import annotations

import inspect
import os
import shlex
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

StepFunction = Callable[..., dict[str, Any]]


class StepError(Exception):
    """A step is unknown, malformed or failed; the message names the step."""


def set_working_directory(directory: str) -> dict[str, Any]:
    """Change the process's working directory (where relative entrypoints are found)."""
    path = os.path.expanduser(directory)
    try:
        os.chdir(path)
    except OSError as exc:
        raise StepError(f"cannot change the working directory to {directory!r}: {exc}") from exc
    return {"directory": os.getcwd()}


def run_shell_script(
    script: str,
    env: Mapping[str, str] | None = None,
    directory: str | None = None,
    stream_output: bool = True,
) -> dict[str, Any]:
    """Run each non-empty line of `script` as a command (no shell); stop at the first failure.

    Returns:
        {"stdout": ..., "stderr": ...} of the last command, stripped.
    """
    full_env = {**os.environ, **{str(k): str(v) for k, v in (env or {}).items()}}
    stdout = stderr = ""
    for line in script.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            command = shlex.split(line)
            result = subprocess.run(
                command, cwd=directory, env=full_env, capture_output=True, text=True, check=False
            )
        except (OSError, ValueError) as exc:
            raise StepError(f"run_shell_script: cannot run {line!r}: {exc}") from exc
        stdout, stderr = result.stdout.strip(), result.stderr.strip()
        if stream_output:
            for text in (result.stdout, result.stderr):
                if text:
                    print(text, end="" if text.endswith("\n") else "\n", flush=True)
        if result.returncode != 0:
            detail = f": {stderr.splitlines()[-1]}" if stderr else ""
            raise StepError(
                f"run_shell_script: {line!r} exited with code {result.returncode}{detail}"
            )
    return {"stdout": stdout, "stderr": stderr}


# Step name -> function; M3 adds git clone, docker and GCS steps here.
STEPS: dict[str, StepFunction] = {
    "set_working_directory": set_working_directory,
    "run_shell_script": run_shell_script,
}


def _parse(step: Any, index: int) -> tuple[str, dict[str, Any]]:
    if not isinstance(step, Mapping) or len(step) != 1:
        raise StepError(
            f"step {index + 1} must be a mapping with one key, the step's name "
            f"(e.g. {{'set_working_directory': {{'directory': '/app'}}}}), got {step!r}"
        )
    ((name, arguments),) = step.items()
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise StepError(f"step {index + 1} ({name}): its arguments must be a mapping")
    return str(name), dict(arguments)


def run_steps(steps: list[Any]) -> list[dict[str, Any]]:
    """Run steps in order; returns each step's outputs.

    Raises:
        StepError: A step is unknown, has wrong arguments or failed.
    """
    outputs = []
    for index, step in enumerate(steps):
        name, arguments = _parse(step, index)
        function = STEPS.get(name) or STEPS.get(name.rsplit(".", 1)[-1])
        if function is None:
            known = ", ".join(sorted(STEPS))
            raise StepError(f"step {index + 1}: unknown step {name!r}; known steps: {known}")
        try:
            inspect.signature(function).bind(**arguments)
        except TypeError as exc:
            raise StepError(f"step {index + 1} ({name}): wrong arguments: {exc}") from exc
        outputs.append(function(**arguments))
    return outputs
