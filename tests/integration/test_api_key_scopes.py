"""API-key scopes: read reads, write writes, only admin manages keys; the last admin key stays."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from skyrun.server.db.engine import Database
from skyrun.server.db.models import ApiKey
from skyrun.settings import Settings

ApiFor = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]


def bearer(created: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {created['key']}"}


async def create_key(api: httpx.AsyncClient, name: str, scope: str | None = None) -> dict[str, str]:
    payload = {"name": name} | ({"scope": scope} if scope else {})
    response = await api.post("/api/api_keys", json=payload)
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


@pytest.fixture
async def authed(api_settings: Settings, api_for: ApiFor) -> AsyncIterator[httpx.AsyncClient]:
    """The test's database behind an app that requires API keys."""
    async with api_for(api_settings.model_copy(update={"server_auth_enabled": True})) as client:
        yield client


async def test_each_scope_allows_what_it_names(
    api: httpx.AsyncClient, authed: httpx.AsyncClient
) -> None:
    reader = bearer(await create_key(api, "reader", "read"))
    writer = bearer(await create_key(api, "writer"))  # write is the default
    admin = bearer(await create_key(api, "admin", "admin"))

    # read: GETs and the POST filters that only read.
    assert (await authed.get("/api/flows", headers=reader)).status_code == 200
    assert (await authed.post("/api/flow_runs/filter", json={}, headers=reader)).status_code == 200
    refused = await authed.post("/api/flows", json={"name": "f"}, headers=reader)
    assert refused.status_code == 403, refused.text
    assert "'reader' has scope 'read'" in refused.json()["detail"]
    assert "needs 'write'" in refused.json()["detail"]
    assert (
        await authed.put("/api/variables/v", json={"value": 1}, headers=reader)
    ).status_code == 403

    # write: everything but API keys.
    assert (await authed.post("/api/flows", json={"name": "f"}, headers=writer)).status_code == 200
    assert (
        await authed.put("/api/variables/v", json={"value": 1}, headers=writer)
    ).status_code == 200
    for method, path in (
        ("GET", "/api/api_keys"),
        ("POST", "/api/api_keys"),
        ("DELETE", "/api/api_keys/reader"),
        ("DELETE", "/api/api_keys/writer"),
    ):
        response = await authed.request(method, path, json={"name": "x"}, headers=writer)
        assert response.status_code == 403, (method, path, response.text)
        assert "needs 'admin'" in response.json()["detail"]
    # ...so a writer cannot revoke anyone, itself included.
    assert (await authed.get("/api/flows", headers=writer)).status_code == 200
    assert (await authed.get("/api/flows", headers=reader)).status_code == 200

    # admin: everything.
    listing = await authed.get("/api/api_keys", headers=admin)
    assert {k["name"]: k["scopes"] for k in listing.json()} == {
        "reader": ["read"],
        "writer": ["read", "write"],
        "admin": ["read", "write", "secrets", "admin"],
    }
    made = await authed.post("/api/api_keys", json={"name": "ci", "scope": "read"}, headers=admin)
    assert made.status_code == 201, made.text
    assert (await authed.post("/api/flows", json={"name": "g"}, headers=admin)).status_code == 200


async def test_the_last_admin_key_is_revoked_only_with_force(
    api: httpx.AsyncClient, authed: httpx.AsyncClient
) -> None:
    first = await create_key(api, "first", "admin")
    second = await create_key(api, "second", "admin")
    await create_key(api, "worker")

    # Two admins: one may go (even revoking itself).
    gone = await authed.delete("/api/api_keys/second", headers=bearer(second))
    assert gone.status_code == 200, gone.text
    assert (await authed.get("/api/api_keys", headers=bearer(second))).status_code == 401

    # The last one stays without force; a write key does not count as an admin.
    last = await authed.delete("/api/api_keys/first", headers=bearer(first))
    assert last.status_code == 409, last.text
    assert "last admin key" in last.json()["detail"]
    assert "--force" in last.json()["detail"]
    assert (await authed.get("/api/api_keys", headers=bearer(first))).status_code == 200

    forced = await authed.delete(
        "/api/api_keys/first", params={"force": "true"}, headers=bearer(first)
    )
    assert forced.status_code == 200, forced.text
    assert forced.json()["revoked"] is True
    assert (await authed.get("/api/flows", headers=bearer(first))).status_code == 401


async def test_revoke_takes_an_exact_name_or_id_never_a_prefix(api: httpx.AsyncClient) -> None:
    target = await create_key(api, "target")
    # A key named like the other's prefix: revoking by that value must hit this one only.
    decoy = await create_key(api, target["prefix"])
    revoked = await api.delete(f"/api/api_keys/{target['prefix']}")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["id"] == decoy["id"]
    keys = {k["name"]: k["revoked"] for k in (await api.get("/api/api_keys")).json()}
    assert keys == {"target": False, target["prefix"]: True}

    by_id = await api.delete(f"/api/api_keys/{target['id']}")
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["name"] == "target"

    unknown = await api.delete(f"/api/api_keys/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert "full id" in unknown.json()["detail"]
    # A name that reads as an id would make the rule ambiguous, so it is refused.
    response = await api.post("/api/api_keys", json={"name": str(uuid.uuid4())})
    assert response.status_code == 422, response.text
    assert "look like an id" in response.json()["detail"][0]["msg"]


async def test_a_revoked_key_stops_at_once_on_the_server_that_revoked_it(
    api: httpx.AsyncClient, authed: httpx.AsyncClient
) -> None:
    admin = await create_key(api, "admin", "admin")
    worker = await create_key(api, "worker")
    # The worker's key is verified, so remembered for a few seconds...
    assert (await authed.get("/api/flows", headers=bearer(worker))).status_code == 200
    revoked = await authed.delete("/api/api_keys/worker", headers=bearer(admin))
    assert revoked.status_code == 200, revoked.text
    # ...but the revoking server forgets it then and there.
    assert (await authed.get("/api/flows", headers=bearer(worker))).status_code == 401


async def test_last_used_is_kept_without_a_write_per_request(
    api: httpx.AsyncClient, api_settings: Settings, api_for: ApiFor, database_url: str
) -> None:
    admin = await create_key(api, "admin", "admin")
    assert admin["last_used"] is None
    auth_settings = api_settings.model_copy(update={"server_auth_enabled": True})

    async def use_key_on_a_new_server() -> None:
        # A new app has no cache of verified keys: each call verifies against the database.
        async with api_for(auth_settings) as authed:
            assert (await authed.get("/api/flows", headers=bearer(admin))).status_code == 200

    async def last_used() -> datetime | None:
        async with database.session() as session:
            return await session.scalar(sa.select(ApiKey.last_used))

    database = Database(database_url)
    try:
        await use_key_on_a_new_server()
        first = await last_used()
        assert first is not None
        # Within the minute, verifying again writes nothing.
        await use_key_on_a_new_server()
        assert await last_used() == first

        async with database.session() as session, session.begin():
            await session.execute(sa.update(ApiKey).values(last_used=first - timedelta(hours=1)))
        await use_key_on_a_new_server()
        latest = await last_used()
        assert latest is not None and latest >= first
    finally:
        await database.dispose()
    [listed] = (await api.get("/api/api_keys")).json()
    assert listed["last_used"] is not None
