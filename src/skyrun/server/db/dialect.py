"""The few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def insert_ignoring_conflicts(session: AsyncSession, model: Any, columns: list[str]) -> Any:
    """INSERT ... ON CONFLICT (columns) DO NOTHING, in the session's dialect."""
    if name(session) == "postgresql":
        # Imported here, not at the top: a session on PostgreSQL has loaded the
        # dialect already, and an embedded SQLite process should not load it.
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(model).on_conflict_do_nothing(index_elements=columns)
    return sqlite.insert(model).on_conflict_do_nothing(index_elements=columns)


def supports_skip_locked(session: AsyncSession) -> bool:
    """PostgreSQL claims rows with FOR UPDATE SKIP LOCKED; SQLite has one writer at a time."""
    return name(session) == "postgresql"
