"""`--install-policy`: install a worker type's extra (e.g. `skyrun[gcp]`) when needed.

The extra is pinned to the running skyrun version, or taken from the local
directory skyrun was installed from (a development checkout), so the worker
never mixes versions.
"""

from __future__ import annotations

import enum
import importlib
import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlparse

from skyrun._version import __version__
from skyrun.workers import registry


class InstallPolicy(enum.StrEnum):
    ALWAYS = "always"
    IF_NOT_PRESENT = "if-not-present"
    NEVER = "never"
    PROMPT = "prompt"


class WorkerTypeUnavailable(Exception):
    """The worker type's code or dependencies are not installed (and were not installed)."""


def local_source_dir() -> str | None:
    """The directory skyrun was installed from (`pip install ./skyrun`, `-e .`), if any."""
    try:
        text = importlib.metadata.distribution("skyrun").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        url = json.loads(text).get("url", "")
    except ValueError:
        return None
    parsed = urlparse(url)
    if parsed.scheme != "file" or not parsed.path:
        return None
    return unquote(parsed.path)


def requirement_for(extra: str, source: str | None) -> str:
    """What pip should install for an extra: from `source` (the directory skyrun was
    installed from), else pinned to the running version."""
    if source is not None:
        return f"{source}[{extra}]"
    return f"skyrun[{extra}]=={__version__}"


def install_extra(extra: str) -> None:
    requirement = requirement_for(extra, local_source_dir())
    print(f"Installing {requirement} ...", file=sys.stderr, flush=True)
    result = subprocess.run([sys.executable, "-m", "pip", "install", requirement], check=False)
    if result.returncode != 0:
        raise WorkerTypeUnavailable(
            f"'pip install {requirement}' failed (exit code {result.returncode}); "
            "install it yourself and start the worker again"
        )
    importlib.invalidate_caches()


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
    requirement = requirement_for(extra, local_source_dir()) if extra else ""
    if policy == InstallPolicy.ALWAYS and extra:
        install_extra(extra)
    try:
        return registry.load_worker_class(worker_type)
    except ImportError as exc:
        missing = exc
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
    install_extra(extra)
    try:
        return registry.load_worker_class(worker_type)
    except ImportError as exc:
        raise WorkerTypeUnavailable(
            f"worker type {worker_type!r} still cannot be loaded after installing "
            f"{requirement}: {exc}"
        ) from exc
