"""The variables page: values as escaped JSON, the create/edit form, bad input, one query."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from ui_statements import selects

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


async def put(api: httpx.AsyncClient, name: str, value: Any, tags: list[str] | None = None) -> None:
    response = await api.put(f"/api/variables/{name}", json={"value": value, "tags": tags or []})
    assert response.status_code == 200, response.text


async def test_variables_show_values_as_escaped_json_and_tags(api: httpx.AsyncClient) -> None:
    await put(api, "region", "europe-west1", ["gcp"])
    await put(api, "limits", {"cpu": 2, "note": XSS}, [XSS])
    response = await api.get("/variables")
    assert response.status_code == 200
    html = response.text
    assert "<code>region</code>" in html and "&#34;europe-west1&#34;" in html
    assert '<span class="tag">gcp</span>' in html
    assert XSS not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "&#34;cpu&#34;: 2" in html
    assert 'href="/variables?edit=limits"' in html
    assert 'data-action="/api/variables/region" data-method="DELETE"' in html
    assert 'data-live-topic="variables"' in html
    # The form: labelled fields, errors next to them, built by blocks.js.
    for input_id in re.findall(r'<(?:input|textarea|select)[^>]* id="([^"]+)"', html):
        assert f'<label for="{input_id}"' in html, input_id
    for name in ("path.name", "value", "tags", "_form"):
        assert f'data-error-for="{name}"' in html
    assert 'data-body-hook="variable-set"' in html


async def test_the_edit_form_is_filled_with_the_value(api: httpx.AsyncClient) -> None:
    await put(api, "plain", "just text </textarea><script>x</script>")
    await put(api, "structured", [1, {"a": True}], ["t1", "t2"])
    plain = (await api.get("/variables?edit=plain")).text
    assert "Edit plain" in plain
    assert re.search(r'id="value-kind-text" name="value_kind" value="text" checked', plain)
    assert "just text &lt;/textarea&gt;&lt;script&gt;x&lt;/script&gt;</textarea>" in plain
    structured = (await api.get("/variables?edit=structured")).text
    assert re.search(r'id="value-kind-json" name="value_kind" value="json" checked', structured)
    assert "&#34;a&#34;: true" in structured
    assert 'value="t1, t2"' in structured
    assert 'id="variable-name" name="name"' in structured and "readonly" in structured


async def test_a_plain_string_and_json_are_both_stored_as_the_form_sends_them(
    api: httpx.AsyncClient,
) -> None:
    """What blocks.js sends: JSON parsed, or the text as a string."""
    await put(api, "as-text", "not json {")
    await put(api, "as-json", {"x": [1, 2]})
    assert (await api.get("/api/variables/as-text")).json()["value"] == "not json {"
    assert (await api.get("/api/variables/as-json")).json()["value"] == {"x": [1, 2]}
    bad = await api.put("/api/variables/Bad%20Name", json={"value": 1})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["path", "name"]  # shown at data-error-for="path.name"


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("before=garbage", "not valid any more"),
        ("before=" + "9" * 300, "not valid any more"),
        ("edit=missing", "There is no variable &#39;missing&#39; to edit"),
        ("edit=%3Cb%3E", "There is no variable &#39;&lt;b&gt;&#39;"),
    ],
)
async def test_bad_query_input_gives_a_message(
    api: httpx.AsyncClient, query: str, text: str
) -> None:
    response = await api.get(f"/variables?{query}")
    assert response.status_code == 200, response.text
    assert text in response.text


async def test_the_list_is_one_query_and_keyset_paged(api: httpx.AsyncClient) -> None:
    await put(api, "v-first", 0)
    with selects(api) as few:
        await api.get("/variables")
    for number in range(52):
        await put(api, f"v{number:02d}", number)
    with selects(api) as many:
        html = (await api.get("/variables")).text
    assert len(few) == len(many) == 1
    assert (
        "<code>v51</code>" in html and "<code>v02</code>" in html and "<code>v01</code>" not in html
    )
    (next_url,) = re.findall(r'href="(/variables\?before=[^"]+)" rel="next"', html)
    second = (await api.get(next_url)).text
    assert "<code>v01</code>" in second and "<code>v-first</code>" in second
    assert "<code>v02</code>" not in second


async def test_the_probe_moves_when_a_variable_changes(api: httpx.AsyncClient) -> None:
    from skyrun.server.db.ui_blocks import variables_fingerprint

    database = api._transport.app.state.database  # type: ignore[attr-defined]

    async def fingerprint() -> Any:
        async with database.session() as session, session.begin():
            return await variables_fingerprint(session)

    empty = await fingerprint()
    await put(api, "a", 1)
    one = await fingerprint()
    await put(api, "a", 2)
    changed = await fingerprint()
    await api.delete("/api/variables/a")
    assert len({str(empty), str(one), str(changed)}) == 3
    assert await fingerprint() == empty


async def test_the_live_fragment_renders_alone(api: httpx.AsyncClient) -> None:
    await put(api, "live", {"n": 1}, ["t"])
    response = await api.get("/variables?fragment=variables")
    assert response.status_code == 200, response.text
    assert "<code>live</code>" in response.text and "<html" not in response.text
