"""API keys: created once, stored as a hash, looked up by prefix, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.api_keys import ApiKey as ApiKeySchema
from skyrun.schemas.api_keys import ApiKeyCreated
from skyrun.server.db.models import ApiKey
from skyrun.server.errors import Conflict, NotFound

KEY_PREFIX = "sky_"


def _hash(secret: str) -> str:
    # Keys are 256 random bits, so a fast hash cannot be brute-forced; no salt needed.
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_api_key(session: AsyncSession, name: str) -> ApiKeyCreated:
    if await session.scalar(sa.select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise Conflict(f"an API key named {name!r} already exists; pick another name")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(id=uuid.uuid4(), name=name, prefix=prefix, key_hash=_hash(secret))
    session.add(key)
    await session.flush()
    return ApiKeyCreated(
        **ApiKeySchema.model_validate(key).model_dump(), key=f"{KEY_PREFIX}{prefix}_{secret}"
    )


async def list_api_keys(session: AsyncSession) -> list[ApiKeySchema]:
    rows = await session.scalars(sa.select(ApiKey).order_by(ApiKey.created))
    return [ApiKeySchema.model_validate(r) for r in rows]


async def revoke_api_key(session: AsyncSession, name_or_prefix: str) -> ApiKeySchema:
    key = await session.scalar(
        sa.select(ApiKey).where(
            sa.or_(ApiKey.name == name_or_prefix, ApiKey.prefix == name_or_prefix)
        )
    )
    if key is None:
        raise NotFound.of("API key", repr(name_or_prefix))
    key.revoked = True
    await session.flush()
    return ApiKeySchema.model_validate(key)


async def verify_api_key(session: AsyncSession, presented: str) -> ApiKey | None:
    """The live key matching `presented`, or None."""
    if not presented.startswith(KEY_PREFIX) or "_" not in presented[len(KEY_PREFIX) :]:
        return None
    prefix, secret = presented[len(KEY_PREFIX) :].split("_", 1)
    key = await session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or key.revoked or not hmac.compare_digest(key.key_hash, _hash(secret)):
        return None
    return key
