"""Blocks over the API on both databases: CRUD, validation, masking, the mask written back,
the `secrets` scope, encryption at rest, the key file, a wrong key, embedded mode."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from skyrun.blocks.base import MASK
from skyrun.client.client import SkyrunClient
from skyrun.server.db.engine import Database
from skyrun.server.db.models import BlockRecord
from skyrun.settings import Settings

ApiFor = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nsecret-material\n-----END PRIVATE KEY-----\n"
KEY_INFO = {
    "type": "service_account",
    "project_id": "proj",
    "private_key": PRIVATE_KEY,
    "client_email": "runner@proj.iam.gserviceaccount.com",
    "token_uri": "https://oauth2.googleapis.com/token",
}


@pytest.fixture
def block_settings(api_settings: Settings, database_url: str) -> Settings:
    """On PostgreSQL a key must be set; on SQLite none is, so the key file is made."""
    if database_url.startswith("sqlite"):
        return api_settings
    return api_settings.model_copy(update={"encryption_key": Fernet.generate_key().decode()})


@pytest.fixture
async def blocks_api(block_settings: Settings, api_for: ApiFor) -> AsyncIterator[httpx.AsyncClient]:
    async with api_for(block_settings) as client:
        yield client


async def create(api: httpx.AsyncClient, block_type: str, name: str, data: Any) -> httpx.Response:
    return await api.post(
        "/api/blocks", json={"block_type": block_type, "name": name, "data": data}
    )


async def raw_data(database_url: str) -> dict[str, Any]:
    database = Database(database_url)
    try:
        async with database.session() as session:
            rows = (await session.execute(sa.select(BlockRecord.name, BlockRecord.data))).all()
            # The column's text as stored, not through the model's JSON type.
            text = await session.scalar(sa.text("SELECT CAST(data AS TEXT) FROM blocks LIMIT 1"))
    finally:
        await database.dispose()
    return {"rows": dict(rows), "text": text}


async def test_types_are_listed_with_their_schemas(blocks_api: httpx.AsyncClient) -> None:
    types = (await blocks_api.get("/api/block_types")).json()
    assert [t["slug"] for t in types] == ["gcp-credentials", "secret"]
    gcp = (await blocks_api.get("/api/block_types/gcp-credentials")).json()
    assert gcp["secret_fields"] == ["service_account_info"]
    assert gcp["block_schema"]["properties"]["service_account_info"]["secret"] is True
    assert (await blocks_api.get("/api/block_types/nope")).status_code == 404


async def test_crud_with_secrets_masked_and_encrypted(
    blocks_api: httpx.AsyncClient, database_url: str
) -> None:
    made = await create(
        blocks_api,
        "gcp-credentials",
        "my-creds",
        {"project": "proj", "service_account_info": json.dumps(KEY_INFO)},
    )
    assert made.status_code == 201, made.text
    assert made.json()["data"] == {"project": "proj", "service_account_info": MASK}

    read = await blocks_api.get("/api/blocks/gcp-credentials/my-creds")
    assert read.json()["data"] == {"project": "proj", "service_account_info": MASK}
    clear = await blocks_api.get(
        "/api/blocks/gcp-credentials/my-creds", params={"include_secrets": "true"}
    )
    assert clear.json()["data"] == {"project": "proj", "service_account_info": KEY_INFO}

    # At rest: the secret's value is a Fernet token, the plain fields as they are.
    stored = await raw_data(database_url)
    row = stored["rows"]["my-creds"]
    assert row["project"] == "proj"
    assert set(row["service_account_info"]) == {"$fernet"}
    assert "secret-material" not in stored["text"] and "runner@proj" not in stored["text"]

    assert (await create(blocks_api, "gcp-credentials", "my-creds", {})).status_code == 409
    await create(blocks_api, "secret", "token", {"value": "s3cr3t"})
    page = (await blocks_api.get("/api/blocks")).json()
    assert page["count"] == 2
    assert [(b["block_type"], b["name"], b["data"]) for b in page["items"]] == [
        ("gcp-credentials", "my-creds", {"project": "proj", "service_account_info": MASK}),
        ("secret", "token", {"value": MASK}),
    ]
    only = (await blocks_api.get("/api/blocks", params={"block_type": "secret"})).json()
    assert [b["name"] for b in only["items"]] == ["token"] and only["count"] == 1

    gone = await blocks_api.delete("/api/blocks/secret/token")
    assert gone.status_code == 204
    assert (await blocks_api.get("/api/blocks/secret/token")).status_code == 404
    assert (await blocks_api.delete("/api/blocks/secret/token")).status_code == 404


async def test_writing_the_mask_back_keeps_the_stored_secret(blocks_api: httpx.AsyncClient) -> None:
    await create(blocks_api, "gcp-credentials", "c", {"service_account_info": KEY_INFO})
    masked = (await blocks_api.get("/api/blocks/gcp-credentials/c")).json()["data"]
    changed = await blocks_api.patch(
        "/api/blocks/gcp-credentials/c", json={"data": {**masked, "project": "other"}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"] == {"project": "other", "service_account_info": MASK}
    clear = await blocks_api.get("/api/blocks/gcp-credentials/c?include_secrets=1")
    assert clear.json()["data"] == {"project": "other", "service_account_info": KEY_INFO}

    # A new value replaces the secret; null clears a field.
    new_key = {**KEY_INFO, "client_email": "other@proj.iam.gserviceaccount.com"}
    await blocks_api.patch(
        "/api/blocks/gcp-credentials/c",
        json={"data": {"service_account_info": new_key, "project": None}},
    )
    clear = await blocks_api.get("/api/blocks/gcp-credentials/c?include_secrets=true")
    assert clear.json()["data"] == {"service_account_info": new_key}
    # The mask is no value for a new block.
    refused = await create(blocks_api, "secret", "s", {"value": MASK})
    assert refused.status_code == 422
    assert "need their values, not the mask" in refused.json()["detail"][0]["msg"]


async def test_data_is_validated_against_the_type(blocks_api: httpx.AsyncClient) -> None:
    missing = {k: v for k, v in KEY_INFO.items() if k != "token_uri"}
    refused = await create(blocks_api, "gcp-credentials", "c", {"service_account_info": missing})
    assert refused.status_code == 422
    [problem] = refused.json()["detail"]
    assert problem["loc"] == ["body", "data", "service_account_info"]
    assert problem["msg"] == "is missing the field 'token_uri' of a service account key"

    unknown = await create(blocks_api, "gcp-credentials", "c", {"projct": "p"})
    assert unknown.json()["detail"][0]["loc"] == ["body", "data", "projct"]
    assert "unknown field" in unknown.json()["detail"][0]["msg"]

    bad_type = await create(blocks_api, "aws-credentials", "c", {})
    assert bad_type.status_code == 422
    assert "the types are: gcp-credentials, secret" in bad_type.json()["detail"][0]["msg"]

    bad_name = await create(blocks_api, "secret", "My.Secret", {"value": "x"})
    assert bad_name.status_code == 422
    assert bad_name.json()["detail"][0]["loc"] == ["body", "name"]

    await create(blocks_api, "secret", "s", {"value": "x"})
    patched = await blocks_api.patch("/api/blocks/secret/s", json={"data": {"value": None}})
    assert patched.status_code == 422
    assert patched.json()["detail"][0] | {"type": None} == {
        "loc": ["body", "data", "value"],
        "msg": "is required",
        "type": None,
    }
    missing_block = await blocks_api.patch("/api/blocks/secret/nope", json={"data": {}})
    assert missing_block.status_code == 404


async def test_reading_secrets_needs_the_secrets_scope(
    block_settings: Settings, blocks_api: httpx.AsyncClient, api_for: ApiFor
) -> None:
    await create(blocks_api, "secret", "s", {"value": "x"})
    keys = {}
    for scope in ("read", "write", "secrets", "admin"):
        made = await blocks_api.post("/api/api_keys", json={"name": scope, "scope": scope})
        keys[scope] = {"Authorization": f"Bearer {made.json()['key']}"}
    async with api_for(block_settings.model_copy(update={"server_auth_enabled": True})) as authed:
        url = "/api/blocks/secret/s"
        for scope in ("read", "write"):
            assert (await authed.get(url, headers=keys[scope])).json()["data"] == {"value": MASK}
            for flag in ("true", "1", "yes", "on", "TRUE"):
                refused = await authed.get(
                    url, params={"include_secrets": flag}, headers=keys[scope]
                )
                assert refused.status_code == 403, (scope, flag)
                assert "needs 'secrets'" in refused.json()["detail"]
            # A repeated parameter cannot hide a true one.
            sneaky = await authed.get(
                url + "?include_secrets=false&include_secrets=true", headers=keys[scope]
            )
            assert sneaky.status_code == 403
        for scope in ("secrets", "admin"):
            clear = await authed.get(url, params={"include_secrets": "true"}, headers=keys[scope])
            assert clear.json()["data"] == {"value": "x"}, scope
        # secrets writes too; only admin manages keys.
        made = await authed.post(
            "/api/blocks",
            json={"block_type": "secret", "name": "t", "data": {"value": "y"}},
            headers=keys["secrets"],
        )
        assert made.status_code == 201
        assert (await authed.get("/api/api_keys", headers=keys["secrets"])).status_code == 403


async def test_a_wrong_key_is_a_clear_error(
    block_settings: Settings, blocks_api: httpx.AsyncClient, api_for: ApiFor
) -> None:
    await create(blocks_api, "secret", "s", {"value": "x"})
    other = block_settings.model_copy(update={"encryption_key": Fernet.generate_key().decode()})
    async with api_for(other) as api:
        # Masked reads need no key.
        assert (await api.get("/api/blocks/secret/s")).status_code == 200
        refused = await api.get("/api/blocks/secret/s", params={"include_secrets": "true"})
        assert refused.status_code == 409
        assert refused.json()["detail"].startswith(
            "block secret/s field 'value' cannot be decrypted with this server's encryption key"
        )
        kept = await api.patch("/api/blocks/secret/s", json={"data": {"value": MASK}})
        assert kept.status_code == 409


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_generates_one_private_key_file(
    settings: Settings, blocks_api: httpx.AsyncClient, api_for: ApiFor, block_settings: Settings
) -> None:
    key_file = settings.home / "encryption.key"
    assert not key_file.exists()
    await create(blocks_api, "secret", "s", {"value": "x"})
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text()
    Fernet(key.strip().encode())  # a real key
    # Another app (another process) on the same home uses the same key.
    async with api_for(block_settings) as again:
        clear = await again.get("/api/blocks/secret/s", params={"include_secrets": "true"})
        assert clear.json()["data"] == {"value": "x"}
    assert key_file.read_text() == key
    assert [p.name for p in Path(settings.home).iterdir() if "encryption" in p.name] == [
        "encryption.key"
    ]


def test_embedded_mode_reads_secrets(sdk_home: Path) -> None:
    client = SkyrunClient(Settings())
    try:
        client.create_block("secret", "token", {"value": "s3cr3t"})
        assert client.read_block("secret", "token").data == {"value": MASK}
        assert client.read_block_data("secret", "token") == {"value": "s3cr3t"}
        assert client.block_value("secret", "token") == {"value": "s3cr3t"}
        with pytest.raises(KeyError):
            client.block_value("secret", "nope")
        client.update_block("secret", "token", {"value": "new"})
        assert client.read_block_data("secret", "token") == {"value": "new"}
        assert [b.name for b in client.list_blocks("secret").items] == ["token"]
        client.delete_block("secret", "token")
        assert client.list_blocks().count == 0
    finally:
        client.close()
