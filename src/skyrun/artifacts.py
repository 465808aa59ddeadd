"""Artifacts: markdown, tables and links attached to the current flow run and task run.

    from skyrun.artifacts import create_markdown_artifact
    create_markdown_artifact("# Report", key="weather-report")

An artifact with a `key` keeps every version; the newest is its latest.
"""

from __future__ import annotations

import uuid
from typing import Any

from skyrun.sdk.context import current_flow_run, current_task_run


def _create(artifact_type: str, data: Any, key: str | None, description: str | None) -> uuid.UUID:
    # Deferred imports keep `import skyrun.artifacts` as light as `import skyrun`.
    from skyrun.client.client import get_client
    from skyrun.schemas.artifacts import ArtifactCreate

    flow_run = current_flow_run()
    task_run = current_task_run()
    client = flow_run.client if flow_run else get_client()
    artifact = client.create_artifact(
        ArtifactCreate(
            key=key,
            type=artifact_type,  # type: ignore[arg-type]
            description=description,
            data=data,
            flow_run_id=flow_run.flow_run_id if flow_run else None,
            task_run_id=task_run.task_run_id if task_run else None,
        )
    )
    return artifact.id


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Store a markdown document with the current run; returns the artifact id."""
    return _create("markdown", markdown, key, description)


def create_table_artifact(
    table: list[dict[str, Any]] | dict[str, list[Any]] | list[list[Any]],
    key: str | None = None,
    description: str | None = None,
) -> uuid.UUID:
    """Store a table: a list of row dicts, a dict of columns, or a list of rows."""
    if isinstance(table, dict):
        columns = list(table)
        rows = list(zip(*table.values(), strict=True))
        table = [dict(zip(columns, row, strict=True)) for row in rows]
    return _create("table", table, key, description)


def create_link_artifact(
    link: str, link_text: str | None = None, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Store a link (with optional text) with the current run."""
    return _create("link", {"link": link, "link_text": link_text}, key, description)


__all__ = ["create_link_artifact", "create_markdown_artifact", "create_table_artifact"]
