"""What a run's infrastructure id names, as facts for its page: a Cloud Run execution's
project, region, job and execution, or a process id."""

from __future__ import annotations

import re

_CLOUD_RUN_EXECUTION = re.compile(
    r"projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)"
    r"/jobs/(?P<job>[^/]+)/executions/(?P<execution>[^/]+)"
)


def describe(infrastructure_id: str | None) -> list[tuple[str, str]]:
    """(label, value) pairs for what `infrastructure_id` names; none for no id."""
    if not infrastructure_id:
        return []
    found = _CLOUD_RUN_EXECUTION.fullmatch(infrastructure_id)
    if found:
        return [
            ("Cloud Run job", found["job"]),
            ("Cloud Run execution", found["execution"]),
            ("Project", found["project"]),
            ("Region", found["region"]),
        ]
    if infrastructure_id.isdigit():
        return [("Process id", infrastructure_id)]
    return []
