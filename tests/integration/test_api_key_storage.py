"""API keys at rest: the database holds a SHA-256 hash of the secret, never the key."""

from __future__ import annotations

import hashlib

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine


async def api_key_rows(database_url: str) -> list[dict[str, object]]:
    """Every row of the api_keys table, read directly rather than through the API."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(sa.text("SELECT * FROM api_keys"))
            return [dict(row) for row in result.mappings()]
    finally:
        await engine.dispose()


async def test_an_api_key_is_stored_only_as_a_hash(
    api: httpx.AsyncClient, database_url: str
) -> None:
    response = await api.post("/api/api_keys", json={"name": "ci"})
    assert response.status_code == 201, response.text
    created = response.json()
    key = created["key"]
    # The key reads sky_<prefix>_<secret>; the prefix finds the row, the secret proves it.
    prefix, secret = key.removeprefix("sky_").split("_", 1)
    assert prefix == created["prefix"]

    rows = await api_key_rows(database_url)
    assert len(rows) == 1
    row = rows[0]
    assert row["name"] == "ci"
    assert row["prefix"] == prefix
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(value) for value in row.values()]
    assert not [value for value in stored if secret in value or key in value]
