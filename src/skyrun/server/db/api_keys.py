"""API keys: created once, stored as a hash, looked up by prefix, scoped, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.api_keys import SCOPE_GRANTS, ApiKeyCreated, ApiKeyScope
from skyrun.schemas.api_keys import ApiKey as ApiKeySchema
from skyrun.schemas.states import utcnow
from skyrun.server.db.models import ApiKey
from skyrun.server.errors import Conflict, NotFound

KEY_PREFIX = "sky_"
# last_used is kept to this resolution: a key in use costs one write a minute, not
# one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(secret: str) -> str:
    # Keys are 256 random bits, so a fast hash cannot be brute-forced; no salt needed.
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_api_key(session: AsyncSession, name: str, scope: ApiKeyScope) -> ApiKeyCreated:
    if await session.scalar(sa.select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise Conflict(f"an API key named {name!r} already exists; pick another name")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        id=uuid.uuid4(),
        name=name,
        prefix=prefix,
        key_hash=_hash(secret),
        scopes=" ".join(SCOPE_GRANTS[scope]),
    )
    session.add(key)
    await session.flush()
    return ApiKeyCreated(
        **ApiKeySchema.model_validate(key).model_dump(), key=f"{KEY_PREFIX}{prefix}_{secret}"
    )


async def list_api_keys(session: AsyncSession) -> list[ApiKeySchema]:
    rows = await session.scalars(sa.select(ApiKey).order_by(ApiKey.created))
    return [ApiKeySchema.model_validate(r) for r in rows]


async def _read_by_name_or_id(session: AsyncSession, name_or_id: str) -> ApiKey:
    """The key with this exact id (a UUID) or else this exact name.

    Names cannot look like ids (ApiKeyCreate refuses them), so one value never
    means two keys; prefixes are not accepted, as a key may be named like one.
    """
    try:
        clause = ApiKey.id == uuid.UUID(name_or_id)
    except ValueError:
        clause = ApiKey.name == name_or_id
    key = await session.scalar(sa.select(ApiKey).where(clause).with_for_update())
    if key is None:
        raise NotFound(
            f"API key {name_or_id!r} not found (give its name or its full id, "
            "as 'skyrun api-key ls' shows them)"
        )
    return key


async def revoke_api_key(session: AsyncSession, name_or_id: str, *, force: bool) -> ApiKeySchema:
    """Revoke a key by name or id; the last live admin key only with `force`."""
    key = await _read_by_name_or_id(session, name_or_id)
    if not key.revoked and ApiKeyScope.ADMIN.value in key.scopes.split() and not force:
        # Every live admin key is locked, so two revocations at once cannot each see
        # the other key alive and leave none. (No other scope's name contains "admin".)
        live_admins = await session.scalars(
            sa.select(ApiKey.id)
            .where(ApiKey.revoked.is_(False), ApiKey.scopes.contains(ApiKeyScope.ADMIN.value))
            .with_for_update()
        )
        if not [key_id for key_id in live_admins if key_id != key.id]:
            raise Conflict(
                f"API key {key.name!r} is the last admin key: without it nobody can manage "
                "keys over the API. Create another admin key first, or revoke it with force "
                "('skyrun api-key revoke --force')"
            )
    key.revoked = True
    await session.flush()
    return ApiKeySchema.model_validate(key)


async def verify_api_key(session: AsyncSession, presented: str) -> ApiKeySchema | None:
    """The live key matching `presented`, or None; notes when it was last used."""
    if not presented.startswith(KEY_PREFIX) or "_" not in presented[len(KEY_PREFIX) :]:
        return None
    prefix, secret = presented[len(KEY_PREFIX) :].split("_", 1)
    key = await session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or key.revoked or not hmac.compare_digest(key.key_hash, _hash(secret)):
        return None
    now = utcnow()
    if _is_stale(key.last_used, now):
        key.last_used = now
        await session.flush()
    return ApiKeySchema.model_validate(key)


def _is_stale(last_used: datetime | None, now: datetime) -> bool:
    return last_used is None or now - last_used >= LAST_USED_RESOLUTION
