"""Requests that take effect once: a key taken with the transaction, the answer kept with it.

A client sends a key with a request it may repeat (after a lost reply, say).
The route takes the key first thing in its transaction (`take`): an insert
that ignores a conflict. The first request inserts it, does its work and
stores its answer under the key (`store`), all in one transaction. A repeat
that arrives meanwhile waits on the key's row (PostgreSQL's unique index, or
SQLite's single writer) until that transaction ends; it then finds the
answer and replays it, or, if the first one rolled back, takes the key itself.
A repeat after the key is swept (`delete_expired_keys`) is a new request.

The answer is stored with a fingerprint of the request, so a key reused for
a different request is refused instead of answered with another's answer.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.states import utcnow
from skyrun.server.db import dialect
from skyrun.server.db.models import IdempotencyKey
from skyrun.server.errors import Invalid


def fingerprint(body: bytes) -> str:
    """What identifies a request's content (its body's SHA-256)."""
    return hashlib.sha256(body).hexdigest()


def scoped(scope: str, key: str) -> str:
    """The stored key: a client's key is its own within one kind of request (`scope`)."""
    return f"{scope}:{key}"


async def take(session: AsyncSession, scope: str, key: str, request_fingerprint: str) -> Any | None:
    """Take `key` (within `scope`) for this transaction, or get the answer stored under it.

    Returns:
        None when this transaction took the key (do the work, then `store`);
        else the answer the first request with this key got.

    Raises:
        Invalid: the key was used before for a request with other content.
    """
    stored_key = scoped(scope, key)
    inserted = await session.execute(
        dialect.insert_ignoring_conflicts(session, IdempotencyKey, ["key"]).values(
            key=stored_key, created=utcnow()
        )
    )
    if getattr(inserted, "rowcount", 0) == 1:
        return None
    stored = await session.scalar(
        sa.select(IdempotencyKey.response).where(IdempotencyKey.key == stored_key)
    )
    if not isinstance(stored, dict) or stored.get("request") != request_fingerprint:
        raise Invalid(
            f"the idempotency key {key!r} was used before for a different request; "
            "send a new key with each new request"
        )
    return stored["response"]


async def store(
    session: AsyncSession, scope: str, key: str, request_fingerprint: str, answer: Any
) -> None:
    """Keep `answer` under the key this transaction took, for repeats to replay."""
    await session.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.key == scoped(scope, key))
        .values(response={"request": request_fingerprint, "response": answer})
    )


async def delete_expired_keys(
    session: AsyncSession, retention_seconds: float, now: datetime
) -> int:
    """Forget keys taken more than `retention_seconds` ago (a housekeeping step)."""
    result = await session.execute(
        sa.delete(IdempotencyKey).where(
            IdempotencyKey.created < now - timedelta(seconds=retention_seconds)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
