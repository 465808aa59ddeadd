"""Shell steps: set_working_directory and run_shell_script."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from typing import Any

from skyrun.deploy.steps.errors import StepError


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
