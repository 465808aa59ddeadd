"""The few statements that differ between SQLite and PostgreSQL.

Locks and notifications exist on PostgreSQL only: SQLite has one writer at a
time (every transaction starts with BEGIN IMMEDIATE, see engine.py), which
already serialises what the locks serialise, and its processes share no
channel to notify each other on (waiting claims re-check the database instead).

PostgreSQL's advisory locks are named by two int4 keys: `_LOCK_CLASS` says the
lock is skyrun's, the second key which one (a pool's claims, a service's
leadership, migrations).
"""

from __future__ import annotations

import uuid
import zlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

# The channel a server NOTIFYs when runs may have become claimable (see work_events.py).
WORK_CHANNEL = "skyrun_work"
_LOCK_CLASS = 7427  # skyrun's advisory locks: (7427, key)
_MIGRATIONS_KEY = 1


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


def _int4(value: int) -> int:
    """`value` folded into PostgreSQL's signed 32-bit range."""
    return (value % 2**32) - 2**31


def _key_of_name(lock_name: str) -> int:
    return _int4(zlib.crc32(lock_name.encode()))


async def lock_pool_for_claims(session: AsyncSession, pool_id: uuid.UUID) -> None:
    """Hold, until the transaction ends, the lock that serialises one pool's claims.

    A claim counts the pool's and its queues' active runs and then takes runs up
    to the limits: two claims doing that at once could both see room for the
    same slot. (Two pools whose ids fold to one key only wait for each other.)
    """
    if name(session) != "postgresql":
        return
    await session.execute(
        sa.text("SELECT pg_advisory_xact_lock(:cls, :key)"),
        {"cls": _LOCK_CLASS, "key": _int4(pool_id.int)},
    )


async def try_leader_lock(session: AsyncSession, service: str) -> bool:
    """Whether this transaction leads `service` (one replica at a time); True on SQLite.

    The lock is held until the transaction ends; a replica that does not get it
    skips its turn, and the next pass tries again.
    """
    if name(session) != "postgresql":
        return True
    got = await session.scalar(
        sa.text("SELECT pg_try_advisory_xact_lock(:cls, :key)"),
        {"cls": _LOCK_CLASS, "key": _key_of_name(f"service:{service}")},
    )
    return bool(got)


def lock_migrations(connection: sa.Connection) -> None:
    """Hold, until the transaction ends, the lock that lets one server migrate at a time."""
    if connection.dialect.name != "postgresql":
        return
    connection.execute(
        sa.text("SELECT pg_advisory_xact_lock(:cls, :key)"),
        {"cls": _LOCK_CLASS, "key": _MIGRATIONS_KEY},
    )


def notify_work(connection: sa.Connection) -> None:
    """NOTIFY every server listening on this PostgreSQL database, when the transaction commits."""
    connection.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": WORK_CHANNEL})
