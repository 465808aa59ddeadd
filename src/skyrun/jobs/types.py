"""Worker types by name: each a plugin class loaded only when asked for.

The server uses `type_job_template` when a pool is created without a template
(a type it does not know, or cannot load, is refused with what to do);
`skyrun worker start -t TYPE` uses `load_worker_class`.
"""

from __future__ import annotations

import copy
import importlib
from typing import Any

# type -> (module, class, pip extra that provides its dependencies or None)
WORKER_TYPES: dict[str, tuple[str, str, str | None]] = {
    "process": ("skyrun.workers.process", "ProcessWorker", None),
    "cloud-run": ("skyrun.integrations.gcp.worker", "CloudRunWorker", "gcp"),
}

# Default templates kept as data modules so the server never imports a worker's dependencies.
_TEMPLATES: dict[str, tuple[str, str]] = {
    "process": ("skyrun.jobs.process_template", "PROCESS_JOB_TEMPLATE"),
    "cloud-run": ("skyrun.integrations.gcp.job_template", "CLOUD_RUN_JOB_TEMPLATE"),
}

EMPTY_TEMPLATE: dict[str, Any] = {
    "job_configuration": {},
    "variables": {"type": "object", "properties": {}},
}


class UnknownWorkerType(LookupError):
    """A worker type skyrun does not know; the message lists the known ones."""


class WorkerTypeNotInstalled(LookupError):
    """A worker type skyrun knows whose module cannot be imported here; says what to install."""


def known_types() -> list[str]:
    return sorted(WORKER_TYPES)


def default_job_template(worker_type: str) -> dict[str, Any] | None:
    """The type's default base job template; None for a type skyrun does not know or cannot load."""
    try:
        return type_job_template(worker_type)
    except (UnknownWorkerType, WorkerTypeNotInstalled):
        return None


def type_job_template(worker_type: str) -> dict[str, Any]:
    """The default base job template of a worker type skyrun knows.

    Raises:
        UnknownWorkerType: skyrun has no such type (the message lists the known ones).
        WorkerTypeNotInstalled: Its module cannot be imported (the message names the
            pip extra that provides it).
    """
    location = _TEMPLATES.get(worker_type)
    if location is None:
        raise UnknownWorkerType(
            f"unknown worker type {worker_type!r}; known types: {', '.join(known_types())}"
        )
    try:
        module = importlib.import_module(location[0])
    except ImportError as exc:
        extra = extra_for(worker_type)
        hint = f"install skyrun's {extra!r} extra (pip install 'skyrun[{extra}]')"
        if extra is None:
            hint = "reinstall skyrun"
        raise WorkerTypeNotInstalled(
            f"the {worker_type!r} worker type is not installed here ({location[0]} cannot be "
            f"imported: {exc}); {hint}"
        ) from exc
    return copy.deepcopy(getattr(module, location[1]))


def extra_for(worker_type: str) -> str | None:
    entry = WORKER_TYPES.get(worker_type)
    return entry[2] if entry else None


def load_worker_class(worker_type: str) -> Any:
    """The worker class for a type; ImportError if its extra is not installed."""
    entry = WORKER_TYPES.get(worker_type)
    if entry is None:
        raise UnknownWorkerType(
            f"unknown worker type {worker_type!r}; known types: {', '.join(known_types())}"
        )
    module = importlib.import_module(entry[0])
    return getattr(module, entry[1])
