"""Image builders (Docker, Podman, Buildah): which one to use, and running one with its
output streamed line by line (through the steps' one streaming helper).

The builder runs with this process's environment, unchanged: Buildah's
`BUILDAH_ISOLATION` and `STORAGE_DRIVER` stay the user's choice. Inside a container (CI,
this project's machines) Buildah's default isolation cannot start `RUN` steps; skyrun does
not lower the isolation by itself (chroot isolation is weaker, a choice for the user to
make), it says to set `BUILDAH_ISOLATION=chroot` when a build fails that way. Nor does it
choose a storage driver: a storage keeps the driver it was made with (Buildah 1.28 ignores
STORAGE_DRIVER; storage.conf decides), and one per build would split a user's images.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from skyrun.deploy.steps.errors import StepError
from skyrun.deploy.steps.shell import stream_command

BUILDERS = ("docker", "podman", "buildah")
INSTALL_HINT = (
    "install one of docker (with a running engine: `docker info` must work), podman "
    "(`apt-get install podman`) or buildah (`apt-get install buildah`), or name an "
    "installed one in the step's `builder:`"
)
# How many of the builder's last lines (of stdout, and of stderr) a failure's message repeats.
TAIL_LINES = 20


def _builder_problem(name: str) -> str | None:
    """Why `name` cannot build here, or None when it can."""
    if shutil.which(name) is None:
        return "is not installed"
    if name == "buildah":
        return None
    try:
        result = subprocess.run(
            [name, "info"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"does not answer `{name} info` ({exc})"
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["no output"]
        return f"is installed but `{name} info` fails ({lines[-1].strip()})"
    return None


def choose_builder(builder: str | None) -> str:
    """The builder to use: `builder` when it works, else the first of docker, podman, buildah.

    Raises:
        StepError: `builder` is not one of the three or does not work here, or none works.
    """
    if builder is not None:
        if builder not in BUILDERS:
            raise StepError(f"builder must be one of {', '.join(BUILDERS)}, not {builder!r}")
        problem = _builder_problem(builder)
        if problem is not None:
            raise StepError(
                f"builder {builder!r} {problem}; {INSTALL_HINT}, or leave `builder` out to "
                "use the first that works"
            )
        return builder
    problems = []
    for candidate in BUILDERS:
        problem = _builder_problem(candidate)
        if problem is None:
            return candidate
        problems.append(f"{candidate} {problem}")
    raise StepError(f"no image builder works here ({'; '.join(problems)}); {INSTALL_HINT}")


def _command_text(command: list[str]) -> str:
    return " ".join(command)


def _failure_hint(builder: str, output: str) -> str:
    lowered = output.lower()
    runtime_failed = any(word in lowered for word in ("cgroup", "creating container", "runtime"))
    if builder == "buildah" and runtime_failed and not os.environ.get("BUILDAH_ISOLATION"):
        return (
            "; Buildah could not start a container for a RUN step: inside a container, "
            "set BUILDAH_ISOLATION=chroot in the environment of `skyrun deploy`"
        )
    if "overlay" in lowered and "driver" in lowered:
        return (
            '; the overlay storage driver may not work here: set `driver = "vfs"` in '
            "storage.conf (/etc/containers/storage.conf, or the file CONTAINERS_STORAGE_CONF "
            "names) with a storage root of its own"
        )
    return ""


def run_builder(command: list[str], what: str, builder: str) -> None:
    """Run the builder's `command`, its output streamed line by line as it comes.

    Raises:
        StepError: It cannot start or exits non-zero; the message has its last lines.
    """
    try:
        result = stream_command(command)
    except OSError as exc:
        raise StepError(f"cannot run `{_command_text(command)}` to {what}: {exc}") from exc
    if result.returncode != 0:
        # The builder reports progress and a RUN step's output on stdout, its error on
        # stderr: the end of each, the error last.
        last = "\n".join(
            result.stdout.rstrip("\n").splitlines()[-TAIL_LINES:]
            + result.stderr.rstrip("\n").splitlines()[-TAIL_LINES:]
        )
        raise StepError(
            f"{builder} could not {what} (`{_command_text(command)}` exited with code "
            f"{result.returncode}){_failure_hint(builder, last)}; its last lines:\n{last}"
        )


def docker_login(registry: str, username: str, password: str) -> None:
    """`docker login` with the password on stdin (never on a command line).

    Raises:
        StepError: The login is refused or docker cannot run.
    """
    command = ["docker", "login", "--username", username, "--password-stdin", registry]
    try:
        result = subprocess.run(
            command, input=password, capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StepError(f"cannot run `{_command_text(command)}`: {exc}") from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise StepError(
            f"docker could not log in to {registry} as {username!r}: {detail}; check the "
            "credentials' username, password and registry_url"
        )
