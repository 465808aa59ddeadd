"""Shell steps (set_working_directory, run_shell_script) and the one helper that runs a
command while streaming its output line by line (pip_install_requirements uses it too).

Imported at a flow run's start-up (pull steps), so it keeps to the standard library.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from skyrun.deploy.steps.errors import StepError

# $NAME, ${NAME} or $$ (a literal dollar), as in shell and string.Template.
_ENV_REFERENCE = re.compile(r"\$(?:\$|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|\{(?P<braced>[^}]*)\})")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class CommandResult:
    """How a command ended and everything it wrote (not stripped)."""

    returncode: int
    stdout: str
    stderr: str

    def last_error_line(self) -> str:
        """The last non-empty line of stderr, or of stdout when stderr is empty ("" if none)."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return ""


def _pump(pipe: IO[str], collected: list[str], sink: IO[str] | None, lock: threading.Lock) -> None:
    # readline returns as soon as the child has written a whole line, so each line is
    # shown while the command is still running (a final line without a newline at EOF).
    for line in iter(pipe.readline, ""):
        collected.append(line)
        if sink is not None:
            with lock:
                sink.write(line if line.endswith("\n") else line + "\n")
                sink.flush()
    pipe.close()


def stream_command(
    command: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    stream_output: bool = True,
) -> CommandResult:
    """Run `command` (no shell), capturing its stdout and stderr, echoing each line as it comes.

    Args:
        command: The program and its arguments.
        cwd: Where to run it; default the current directory.
        env: Its whole environment; default this process's.
        stream_output: Echo the child's stdout lines to `sys.stdout` and its stderr lines to
            `sys.stderr` while it runs (a worker forwards both to the run's logs).

    Returns:
        The exit code and the captured output.

    Raises:
        OSError: The program cannot be started (not found, not executable, bad `cwd`).
    """
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    assert process.stdout is not None and process.stderr is not None
    stdout: list[str] = []
    stderr: list[str] = []
    lock = threading.Lock()
    # Both pipes are read at once: reading one to its end first could block the child on
    # a full buffer of the other.
    reader = threading.Thread(
        target=_pump,
        args=(process.stderr, stderr, sys.stderr if stream_output else None, lock),
        daemon=True,
    )
    reader.start()
    try:
        _pump(process.stdout, stdout, sys.stdout if stream_output else None, lock)
        reader.join()
        returncode = process.wait()
    finally:
        # Interrupted (Ctrl-C, a cancelled run): do not leave the command running.
        if process.poll() is None:
            process.kill()
            process.wait()
    return CommandResult(returncode, "".join(stdout), "".join(stderr))


def expand_env_references(text: str, env: Mapping[str, str], where: str) -> str:
    """`text` with `$NAME` and `${NAME}` replaced from `env` and `$$` by `$`.

    Raises:
        StepError: A variable is not set, or a `${...}` holds no variable name.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("bare") or match.group("braced")
        if name is None or not _NAME.fullmatch(name):
            raise StepError(f"{where}: {match.group(0)!r} is not a variable reference")
        if name not in env:
            raise StepError(
                f"{where}: environment variable {name!r} is not set; set it in the step's "
                "`env:` or the environment, or write $$ for a literal $"
            )
        return env[name]

    return _ENV_REFERENCE.sub(replace, text)


def set_working_directory(directory: str) -> dict[str, Any]:
    """Change the process's working directory (where relative entrypoints are found).

    Args:
        directory: The directory; `~` is expanded.

    Returns:
        {"directory": the new working directory, absolute}.

    Raises:
        StepError: The directory does not exist or cannot be entered.
    """
    path = os.path.expanduser(directory)
    try:
        os.chdir(path)
    except OSError as exc:
        raise StepError(f"cannot change the working directory to {directory!r}: {exc}") from exc
    return {"directory": os.getcwd()}


def run_shell_script(
    script: str,
    directory: str | None = None,
    env: Mapping[str, Any] | None = None,
    stream_output: bool = True,
    expand_env_vars: bool = False,
) -> dict[str, Any]:
    """Run each line of `script` as one command (no shell); stop at the first that fails.

    Empty lines and lines starting with `#` are skipped. A line is split like a shell
    would split words (quotes work) but pipes, `&&` and redirections do not: write
    `sh -c '...'` for those.

    Args:
        script: The commands, one a line.
        directory: Where to run them; default the current directory.
        env: Variables added to this process's environment for the commands.
        stream_output: Print each output line as the command writes it.
        expand_env_vars: Replace `$NAME` / `${NAME}` in the script from the environment and
            `env` before splitting the lines (`$$` is a literal `$`).

    Returns:
        {"stdout": ..., "stderr": ...} of the last command, stripped.

    Raises:
        StepError: A line cannot be parsed or started, a variable is unset, or a command
            exits with a non-zero code (its line, code and last error line are named).
    """
    full_env = {**os.environ, **{str(k): str(v) for k, v in (env or {}).items()}}
    if directory is not None and not os.path.isdir(directory):
        raise StepError(f"directory {directory!r} does not exist; fix `directory:`")
    result = CommandResult(0, "", "")
    for number, line in enumerate(script.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"script line {number}: {line.strip()!r}"
        if expand_env_vars:
            line = expand_env_references(line, full_env, where)
        try:
            command = shlex.split(line)
        except ValueError as exc:
            raise StepError(f"{where}: cannot be split into words: {exc}") from exc
        try:
            result = stream_command(
                command, cwd=directory, env=full_env, stream_output=stream_output
            )
        except FileNotFoundError as exc:
            raise StepError(
                f"{where}: command {command[0]!r} not found ({exc.strerror}); lines run "
                "without a shell, so write `sh -c '...'` for shell syntax"
            ) from exc
        except OSError as exc:
            raise StepError(f"{where}: cannot run it: {exc}") from exc
        if result.returncode != 0:
            detail = result.last_error_line()
            raise StepError(
                f"{where} exited with code {result.returncode}" + (f": {detail}" if detail else "")
            )
    return {"stdout": result.stdout.strip(), "stderr": result.stderr.strip()}
