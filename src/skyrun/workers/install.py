"""`--install-policy`: install a worker type's extra (e.g. `skyrun[gcp]`) when needed.

The extra is pinned to the running skyrun version, or taken from the local
directory skyrun was installed from (a development checkout, kept editable if it
was), so the worker never mixes versions. A type whose own skyrun module is
missing is refused before anything is installed: no extra can bring it.
"""

from __future__ import annotations

import enum
import importlib
import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from skyrun._version import __version__
from skyrun.jobs import types as registry


class InstallPolicy(enum.StrEnum):
    ALWAYS = "always"
    IF_NOT_PRESENT = "if-not-present"
    NEVER = "never"
    PROMPT = "prompt"


class WorkerTypeUnavailable(Exception):
    """The worker type's code or dependencies are not installed (and were not installed)."""


@dataclass(frozen=True)
class LocalSource:
    """The directory skyrun was installed from, and whether as an editable install."""

    path: str
    editable: bool


def local_source() -> LocalSource | None:
    """Where skyrun was installed from (`pip install ./skyrun`, `-e .`), if a directory."""
    try:
        text = importlib.metadata.distribution("skyrun").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        return None
    parsed = urlparse(info.get("url", ""))
    if parsed.scheme != "file" or not parsed.path:
        return None
    editable = bool((info.get("dir_info") or {}).get("editable"))
    return LocalSource(unquote(parsed.path), editable)


def pip_arguments(extra: str, source: LocalSource | None) -> list[str]:
    """What `pip install` gets for an extra: the directory skyrun came from (editable
    again if it was: a plain install would replace the checkout's code), else the
    extra pinned to the running version."""
    if source is None:
        return [f"skyrun[{extra}]=={__version__}"]
    requirement = f"{source.path}[{extra}]"
    return ["-e", requirement] if source.editable else [requirement]


def install_extra(arguments: list[str]) -> None:
    """`pip install` with these arguments (from `pip_arguments`), in this interpreter."""
    shown = " ".join(arguments)
    print(f"Installing {shown} ...", file=sys.stderr, flush=True)
    result = subprocess.run([sys.executable, "-m", "pip", "install", *arguments], check=False)
    if result.returncode != 0:
        raise WorkerTypeUnavailable(
            f"'pip install {shown}' failed (exit code {result.returncode}); "
            "install it yourself and start the worker again"
        )
    importlib.invalidate_caches()


def _missing_skyrun_module(exc: ImportError) -> str | None:
    """The skyrun module an import failed for, if it is skyrun's own (not a dependency)."""
    name = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    return name if name and (name == "skyrun" or name.startswith("skyrun.")) else None


def install_hint(worker_type: str) -> str:
    extra = registry.extra_for(worker_type)
    return f"pip install 'skyrun[{extra}]'" if extra else "reinstall skyrun"


def load_worker_type(
    worker_type: str,
    policy: InstallPolicy,
    *,
    interactive: bool,
    confirm: Callable[[str], bool],
) -> Any:
    """The worker class for `worker_type`, installing its extra as the policy allows.

    Args:
        worker_type: A registered type name, e.g. "process" or "cloud-run".
        policy: When to install the type's pip extra.
        interactive: Whether a person can answer a prompt (stdin is a TTY).
        confirm: Asks a yes/no question (used by the prompt policy).

    Raises:
        registry.UnknownWorkerType: The type is not registered.
        WorkerTypeUnavailable: Its code cannot be imported and was not installed.
    """
    extra = registry.extra_for(worker_type)
    arguments = pip_arguments(extra, local_source()) if extra else []
    requirement = " ".join(arguments)
    if policy == InstallPolicy.ALWAYS and extra:
        install_extra(arguments)
    try:
        return registry.load_worker_class(worker_type)
    except ImportError as exc:
        missing = exc
    own_module = _missing_skyrun_module(missing)
    if own_module is not None:
        raise WorkerTypeUnavailable(
            f"worker type {worker_type!r} is not part of skyrun {__version__} (its module "
            f"{own_module} is missing); installing extras cannot add it: use a skyrun "
            "version that has it"
        )
    if extra is None:
        raise WorkerTypeUnavailable(
            f"worker type {worker_type!r} cannot be loaded ({missing}); {install_hint(worker_type)}"
        )
    wants_install = policy == InstallPolicy.IF_NOT_PRESENT or (
        policy == InstallPolicy.PROMPT
        and interactive
        and confirm(f"Worker type {worker_type!r} needs {requirement}. Install it now?")
    )
    if not wants_install:
        raise WorkerTypeUnavailable(
            f"worker type {worker_type!r} is not installed ({missing}); install it with "
            f"{install_hint(worker_type)} or start the worker with --install-policy if-not-present"
        )
    install_extra(arguments)
    try:
        return registry.load_worker_class(worker_type)
    except ImportError as exc:
        raise WorkerTypeUnavailable(
            f"worker type {worker_type!r} still cannot be loaded after installing "
            f"{requirement}: {exc}"
        ) from exc
