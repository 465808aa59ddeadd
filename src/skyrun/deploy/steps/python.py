"""Python packages for steps: pip_install_requirements, and ensure_requirements, which
installs what a step's `requires:` names unless it is already there.

pip runs as `sys.executable -m pip`, so packages land in the environment that runs the
steps (and the flow), never in whichever pip is first on PATH.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from skyrun.deploy.steps.errors import StepError
from skyrun.deploy.steps.shell import CommandResult, stream_command


def _pip_install(arguments: list[str], cwd: str | None, stream_output: bool) -> CommandResult:
    command = [sys.executable, "-m", "pip", "install", *arguments]
    try:
        return stream_command(command, cwd=cwd, stream_output=stream_output)
    except OSError as exc:
        raise StepError(f"cannot run {sys.executable} -m pip: {exc}") from exc


def _pip_problem(result: CommandResult) -> str:
    if "No module named pip" in result.stderr:
        return f"pip is not installed for {sys.executable}; install it (python -m ensurepip)"
    return result.last_error_line() or f"pip exited with code {result.returncode}"


def pip_install_requirements(
    requirements_file: str = "requirements.txt",
    directory: str | None = None,
    stream_output: bool = True,
) -> dict[str, Any]:
    """Install a requirements file with pip, printing pip's output as it runs.

    Args:
        requirements_file: The file, relative to `directory`.
        directory: Where the file is and pip runs (paths in the file are relative to it);
            default the current directory.
        stream_output: Print pip's output lines as they come.

    Returns:
        {"stdout": ..., "stderr": ...} of pip, stripped.

    Raises:
        StepError: The file is missing or pip failed (its last error line is named).
    """
    base = Path(directory) if directory is not None else Path.cwd()
    path = base / requirements_file
    if not path.is_file():
        raise StepError(
            f"requirements file {str(path)!r} not found; fix `requirements_file:` or `directory:`"
        )
    result = _pip_install(["-r", str(path)], str(base), stream_output)
    if result.returncode != 0:
        raise StepError(f"pip could not install {str(path)!r}: {_pip_problem(result)}")
    return {"stdout": result.stdout.strip(), "stderr": result.stderr.strip()}


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _extras_satisfied(requirement: Requirement) -> bool:
    # An extra is satisfied when every requirement it adds (those whose marker holds
    # for that extra; evaluate() fills in the rest of this machine's environment) is.
    declared = importlib.metadata.requires(requirement.name) or []
    for extra in requirement.extras:
        for line in declared:
            needed = Requirement(line)
            if needed.marker is None or "extra" not in str(needed.marker):
                continue
            if not needed.marker.evaluate({"extra": extra}):
                continue
            needed.marker = None  # it holds here; is_satisfied would evaluate it without the extra
            if not is_satisfied(needed):
                return False
    return True


def is_satisfied(requirement: Requirement) -> bool:
    """Whether `requirement` is installed here at an allowed version, with its extras.

    A requirement whose environment marker does not hold here counts as satisfied: it
    asks for nothing on this machine.
    """
    if requirement.marker is not None and not requirement.marker.evaluate():
        return True
    version = _installed_version(requirement.name)
    if version is None:
        return False
    if not requirement.specifier.contains(version, prereleases=True):
        return False
    return _extras_satisfied(requirement)


def _parse(requirements: list[str]) -> list[tuple[str, Requirement]]:
    parsed = []
    for text in requirements:
        try:
            parsed.append((text, Requirement(text)))
        except InvalidRequirement as exc:
            raise StepError(
                f"requires: {text!r} is not a requirement ({exc}); write e.g. 'package>=1.2'"
            ) from exc
    return parsed


def ensure_requirements(requirements: list[str]) -> None:
    """Install with pip those of `requirements` not already satisfied here.

    Args:
        requirements: Requirement strings (`name`, `name>=1.2`, `name[extra]`, `name @ URL`).

    Raises:
        StepError: A requirement is malformed, or pip could not install the missing ones
            (they are named, with pip's last error line).
    """
    missing = [text for text, requirement in _parse(requirements) if not is_satisfied(requirement)]
    if not missing:
        return
    result = _pip_install(missing, None, stream_output=True)
    if result.returncode != 0:
        raise StepError(f"cannot install {', '.join(missing)}: {_pip_problem(result)}")
    # A module installed now must be importable by the step about to run in this process.
    importlib.invalidate_caches()
    still = [text for text, requirement in _parse(missing) if not is_satisfied(requirement)]
    if still:
        raise StepError(
            f"pip installed {', '.join(still)} but this Python ({sys.executable}) still does not "
            f"see it (is PIP_TARGET or PIP_PREFIX set to a directory not on sys.path?); "
            f"sys.path: {os.pathsep.join(sys.path)}"
        )
