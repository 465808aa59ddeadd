"""The blocks pages: the catalogue, the forms generated from each type's schema, a block's
page with its secrets masked (never in the HTML), bad query input, one query per list page."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from ui_statements import selects

from skyrun.blocks.base import MASK
from skyrun.server.ui.pages.blocks import schema_fields
from skyrun.settings import Settings

SECRET = "s3cr3t-value-never-shown"
SCRIPT_NAME = "<script>window.__xss=1</script>"
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


def key_info(**changes: Any) -> dict[str, Any]:
    info = {
        "type": "service_account",
        "project_id": "proj",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMIIsecretmaterial\n-----END PRIVATE KEY-----\n",
        "client_email": "runner@proj.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    info.update(changes)
    return {k: v for k, v in info.items() if v is not None}


@pytest.fixture
async def api(
    api_settings: Settings,
    api_for: Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with an encryption key (a server on PostgreSQL needs one for secrets)."""
    keyed = api_settings.model_copy(update={"encryption_key": Fernet.generate_key().decode()})
    async with api_for(keyed) as client:
        yield client


async def create(api: httpx.AsyncClient, block_type: str, name: str, data: dict[str, Any]) -> None:
    response = await api.post(
        "/api/blocks", json={"block_type": block_type, "name": name, "data": data}
    )
    assert response.status_code == 201, response.text


def test_schema_fields_read_titles_kinds_secrets_and_required() -> None:
    fields = {
        f.name: f
        for f in schema_fields(
            {
                "properties": {
                    "project": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "title": "Project",
                    },
                    "info": {
                        "anyOf": [{"type": "object"}, {"type": "null"}],
                        "secret": True,
                        "description": "the key",
                    },
                    "token": {"type": "string", "secret": True},
                    "count": {"type": "integer", "default": 3},
                    "region": {"enum": ["a", "b"], "type": "string"},
                    "on": {"type": "boolean"},
                },
                "required": ["token"],
            }
        )
    }
    assert (fields["project"].kind, fields["project"].nullable, fields["project"].widget) == (
        "string",
        True,
        "text",
    )
    assert fields["project"].title == "Project"
    assert fields["info"].widget == "textarea" and fields["info"].secret
    assert fields["info"].description == "the key" and fields["info"].title == "info"
    assert fields["token"].widget == "password" and fields["token"].required
    assert fields["count"].widget == "number" and fields["count"].default == 3
    assert fields["region"].widget == "select" and fields["region"].choices == ["a", "b"]
    assert fields["on"].widget == "checkbox"
    # A secret's input shows the mask, never the value.
    assert fields["token"].text("hunter2") == MASK
    assert fields["info"].text({"a": 1}) == MASK
    assert fields["count"].text(None) == ""


async def test_catalogue_lists_types_with_fields_and_create_links(api: httpx.AsyncClient) -> None:
    response = await api.get("/blocks")
    assert response.status_code == 200
    html = response.text
    assert "GCP Credentials" in html and "gcp-credentials" in html
    assert "service_account_info" in html and "The service account key JSON" in html
    assert 'href="/blocks/new?type=gcp-credentials"' in html
    assert 'href="/blocks/new?type=secret"' in html
    assert "No blocks yet" in html
    assert 'data-live-topic="blocks"' in html


async def test_create_form_is_generated_from_the_schema(api: httpx.AsyncClient) -> None:
    html = (await api.get("/blocks/new?type=gcp-credentials")).text
    # Every input has a label.
    for input_id in re.findall(r'<(?:input|textarea|select)[^>]* id="([^"]+)"', html):
        assert f'<label for="{input_id}"' in html, input_id
    assert re.search(
        r'<textarea id="field-service_account_info" name="data.service_account_info"', html
    )
    assert (
        'type="file" accept=".json,application/json" data-fills="field-service_account_info"'
        in html
    )
    assert 'data-error-for="data.service_account_info"' in html
    assert 'data-error-for="name"' in html
    assert 'data-block-type="gcp-credentials"' in html
    assert '<script src="/ui/static/blocks.js"' in html
    assert "Path to a service account key file" in html  # descriptions shown

    secret_form = (await api.get("/blocks/new?type=secret")).text
    assert re.search(r'<input id="field-value" name="data.value" type="password"', secret_form)
    assert 'autocomplete="new-password"' in secret_form


async def test_block_page_masks_secrets_everywhere(api: httpx.AsyncClient) -> None:
    info = key_info(
        private_key=f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n"
    )
    await create(
        api, "gcp-credentials", "prod", {"project": "my-proj", "service_account_info": info}
    )
    await create(api, "secret", "token", {"value": SECRET + "-token"})

    for path in ("/blocks/gcp-credentials/prod", "/blocks/secret/token", "/blocks"):
        response = await api.get(path)
        assert response.status_code == 200, path
        assert SECRET not in response.text, path
        assert "runner@proj" not in response.text, path  # nothing of the key, not even its email
    gcp = (await api.get("/blocks/gcp-credentials/prod")).text
    assert MASK in gcp and "my-proj" in gcp
    # The edit form carries the mask, so saving unchanged keeps the stored key.
    assert re.search(r'<textarea id="field-service_account_info"[^>]*>\*{8}</textarea>', gcp)
    assert 'data-method="PATCH"' in gcp and 'data-method="DELETE"' in gcp
    token = (await api.get("/blocks/secret/token")).text
    assert 'value="********"' in token

    listing = (await api.get("/blocks?type=secret")).text
    assert (
        'href="/blocks/secret/token"' in listing and "/blocks/gcp-credentials/prod" not in listing
    )


async def test_writing_the_mask_back_keeps_the_secret(api: httpx.AsyncClient) -> None:
    """What the edit form sends when a secret is left alone."""
    await create(api, "gcp-credentials", "keep", {"service_account_info": key_info()})
    response = await api.patch(
        "/api/blocks/gcp-credentials/keep",
        json={"data": {"service_account_info": MASK, "project": "changed"}},
    )
    assert response.status_code == 200, response.text
    clear = await api.get("/api/blocks/gcp-credentials/keep", params={"include_secrets": "true"})
    assert clear.json()["data"]["service_account_info"]["private_key"].startswith("-----BEGIN")
    assert clear.json()["data"]["project"] == "changed"


async def test_a_key_missing_private_key_is_a_422_at_the_field_the_form_shows(
    api: httpx.AsyncClient,
) -> None:
    # The form sends the pasted text as it is when it is not JSON, parsed when it is.
    for pasted in (key_info(private_key=None), json.dumps(key_info(private_key=None))):
        response = await api.post(
            "/api/blocks",
            json={
                "block_type": "gcp-credentials",
                "name": "bad",
                "data": {"service_account_info": pasted},
            },
        )
        assert response.status_code == 422
        (problem,) = response.json()["detail"]
        assert problem["loc"] == ["body", "data", "service_account_info"]
        assert "private_key" in problem["msg"]
    form = (await api.get("/blocks/new?type=gcp-credentials")).text
    assert 'data-error-for="data.service_account_info"' in form


async def test_user_text_in_a_block_is_escaped(api: httpx.AsyncClient) -> None:
    # Names cannot carry markup at all: the API refuses them.
    refused = await api.post(
        "/api/blocks", json={"block_type": "secret", "name": SCRIPT_NAME, "data": {"value": "x"}}
    )
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "name"]
    await create(api, "gcp-credentials", "xss", {"project": XSS})
    html = (await api.get("/blocks/gcp-credentials/xss")).text
    assert XSS not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/blocks?before=garbage", 200, "not valid any more"),
        ("/blocks?before=2026-01-01T00:00:00~not-a-uuid", 200, "not valid any more"),
        ("/blocks?type=%3Cnope%3E", 200, "There is no block type &#39;&lt;nope&gt;&#39;"),
        ("/blocks/new?type=nope", 404, "There is no block type &#39;nope&#39;"),
        ("/blocks/new", 400, "Choose a block type"),
        ("/blocks/secret/missing", 404, "There is no block secret/missing"),
        ("/blocks/nope/missing", 404, "There is no block nope/missing"),
    ],
)
async def test_bad_query_input_is_a_message_not_a_500(
    api: httpx.AsyncClient, path: str, status: int, text: str
) -> None:
    response = await api.get(path)
    assert response.status_code == status, response.text
    assert text in response.text


async def test_list_pages_are_keyset_paged_in_a_constant_number_of_queries(
    api: httpx.AsyncClient,
) -> None:
    await create(api, "secret", "first", {"value": "x"})
    with selects(api) as few:
        assert (await api.get("/blocks")).status_code == 200
    for number in range(55):
        await create(api, "secret", f"b{number:02d}", {"value": "x"})
    with selects(api) as many:
        first = await api.get("/blocks")
    assert len(many) == len(few) == 1, many
    html = first.text
    assert "/blocks/secret/b54" in html and "/blocks/secret/b05" in html
    assert "/blocks/secret/b04" not in html  # 50 a page, newest first
    (next_url,) = re.findall(r'href="(/blocks\?before=[^"]+)" rel="next"', html)
    second = (await api.get(next_url.replace("&amp;", "&"))).text
    assert "/blocks/secret/b04" in second and "/blocks/secret/first" in second
    assert "/blocks/secret/b05" not in second
    assert 'rel="next"' not in second


async def test_the_live_fragment_renders_alone(api: httpx.AsyncClient) -> None:
    await create(api, "secret", "live", {"value": SECRET})
    response = await api.get("/blocks?fragment=documents")
    assert response.status_code == 200, response.text
    assert 'href="/blocks/secret/live"' in response.text and "<html" not in response.text
    assert SECRET not in response.text
