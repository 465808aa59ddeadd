"""The artifacts pages: latest per key in one query, unkeyed ones, a key's history, each
type rendered (markdown sanitised, table cells escaped, safe links, progress), bad input."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from ui_statements import selects

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'
JS_LINK = "[click me](javascript:window.__xss=1)"


async def artifact(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await api.post("/api/artifacts", json=fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def flow_run(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    flow = (await api.post("/api/flows", json={"name": "weather"})).json()
    response = await api.post("/api/flow_runs", json={"flow_id": flow["id"], "name": name})
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


async def test_the_list_shows_the_latest_per_key_and_the_unkeyed(api: httpx.AsyncClient) -> None:
    run = await flow_run(api, "sunny-run")
    await artifact(api, key="report", type="markdown", data="# old", description="first")
    await artifact(
        api,
        key="report",
        type="markdown",
        data="# new",
        description="second",
        flow_run_id=run["id"],
    )
    await artifact(api, key="temps", type="table", data=[{"city": "Oslo", "t": 3}])
    loose = await artifact(
        api, type="link", data={"link": "https://example.com"}, description="loose"
    )
    html = (await api.get("/artifacts")).text
    assert 'href="/artifacts/report"' in html and 'href="/artifacts/temps"' in html
    assert "second" in html and "first" not in html  # only the latest of a key
    assert f'href="/runs/{run["id"]}">sunny-run</a>' in html
    assert re.search(r'href="/artifacts/report">report</a></td>.*?<td>2</td>', html, re.S)
    assert f'href="/artifacts/unkeyed/{loose["id"]}"' in html and "loose" in html
    assert 'data-live-topic="artifacts"' in html


async def test_a_key_page_renders_the_latest_and_lists_every_version(
    api: httpx.AsyncClient,
) -> None:
    old = await artifact(api, key="report", type="markdown", data="# Old report\n\n*was*")
    await artifact(
        api,
        key="report",
        type="markdown",
        data=f"# Weather\n\n{SCRIPT}\n\n{IMG}\n\n{JS_LINK}\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        description=f"**bold** {SCRIPT}",
    )
    html = (await api.get("/artifacts/report")).text
    assert "<h1>Weather</h1>" in html
    assert "<strong>bold</strong>" in html  # the description is markdown too
    assert SCRIPT not in html and IMG not in html and 'href="javascript:' not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "<table>" in html and "<td>1</td>" in html
    assert "Latest version" in html
    assert f'href="/artifacts/report?version={old["id"]}"' in html
    older = (await api.get(f"/artifacts/report?version={old['id']}")).text
    assert "<h1>Old report</h1>" in older and "<em>was</em>" in older
    assert "<h1>Weather</h1>" not in older


async def test_tables_links_and_progress_render_inertly(api: httpx.AsyncClient) -> None:
    await artifact(
        api,
        key="cells",
        type="table",
        data=[{"city": SCRIPT, IMG: 1.5}, {"city": "Oslo", "extra": None}],
    )
    table = (await api.get("/artifacts/cells")).text
    assert SCRIPT not in table and IMG not in table
    assert "<td>&lt;script&gt;window.__xss=1&lt;/script&gt;</td>" in table
    assert '<th scope="col">&lt;img src=x onerror=&#34;window.__xss=1&#34;&gt;</th>' in table
    assert "<td>Oslo</td>" in table and "<td>1.5</td>" in table

    await artifact(api, key="columns", type="table", data={"x": [1, 2], "y": ["a", "b"]})
    assert "<td>2</td><td>b</td>" in (await api.get("/artifacts/columns")).text

    await artifact(
        api,
        key="good-link",
        type="link",
        data={"link": "https://example.com/a?b=1&c=2", "link_text": SCRIPT},
    )
    good = (await api.get("/artifacts/good-link")).text
    assert 'href="https://example.com/a?b=1&amp;c=2"' in good
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;</a>" in good

    await artifact(api, key="bad-link", type="link", data={"link": "javascript:window.__xss=1"})
    bad = (await api.get("/artifacts/bad-link")).text
    assert 'href="javascript:' not in bad and "not a web link" in bad

    await artifact(api, key="progress", type="progress", data=42.5)
    assert '<progress max="100" value="42.5"' in (await api.get("/artifacts/progress")).text
    await artifact(api, key="odd-progress", type="progress", data={"not": "a number"})
    assert "&#34;not&#34;" in (await api.get("/artifacts/odd-progress")).text


async def test_an_unkeyed_artifact_has_its_own_page(api: httpx.AsyncClient) -> None:
    loose = await artifact(api, type="markdown", data="## Loose one")
    html = (await api.get(f"/artifacts/unkeyed/{loose['id']}")).text
    assert "<h2>Loose one</h2>" in html


# A fixed id: xdist workers must collect the same test names.
NO_SUCH_ID = uuid.UUID("00000000-0000-4000-8000-0000000000aa")


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/artifacts?before=junk", 200, "not valid any more"),
        ("/artifacts?unkeyed_before=2026-01-01~zz", 200, "not valid any more"),
        ("/artifacts/missing", 404, "There is no artifact with the key &#39;missing&#39;"),
        ("/artifacts/report?version=nope", 200, "&#39;nope&#39; is not a version id"),
        (f"/artifacts/report?version={NO_SUCH_ID}", 200, "is not a version of &#39;report&#39;"),
        ("/artifacts/report?before=junk", 200, "not valid any more"),
        ("/artifacts/unkeyed/nope", 404, "is not an artifact id"),
        (f"/artifacts/unkeyed/{NO_SUCH_ID}", 404, "There is no artifact"),
    ],
)
async def test_bad_input_is_a_message_not_a_500(
    api: httpx.AsyncClient, path: str, status: int, text: str
) -> None:
    await artifact(api, key="report", type="markdown", data="x")
    response = await api.get(path)
    assert response.status_code == status, response.text
    assert text in response.text


async def test_a_version_of_another_key_is_not_shown_under_this_one(api: httpx.AsyncClient) -> None:
    other = await artifact(api, key="other", type="markdown", data="# Other secretly")
    await artifact(api, key="report", type="markdown", data="# Report")
    html = (await api.get(f"/artifacts/report?version={other['id']}")).text
    assert "Other secretly" not in html and "<h1>Report</h1>" in html


async def test_pages_take_a_constant_number_of_queries(api: httpx.AsyncClient) -> None:
    run = await flow_run(api, "r")
    await artifact(api, key="k0", type="markdown", data="x", flow_run_id=run["id"])
    await artifact(api, type="markdown", data="x")
    with selects(api) as few:
        await api.get("/artifacts")
    with selects(api) as few_history:
        await api.get("/artifacts/k0")
    for number in range(1, 56):
        await artifact(api, key=f"k{number}", type="markdown", data="x", flow_run_id=run["id"])
        await artifact(api, key="k0", type="markdown", data=f"v{number}")
        await artifact(api, type="markdown", data="x", flow_run_id=run["id"])
    with selects(api) as many:
        html = (await api.get("/artifacts")).text
    with selects(api) as many_history:
        history = (await api.get("/artifacts/k0")).text
    assert len(few) == len(many) == 2  # the keyed page and the unkeyed page
    assert len(few_history) == len(many_history) == 1
    assert html.count('href="/artifacts/k') == 50
    assert html.count('href="/artifacts/unkeyed/') == 20
    assert history.count("?version=") == 49  # 50 a page, the shown one not linked
    (next_url,) = re.findall(r'href="(/artifacts/k0\?before=[^"]+)" rel="next"', history)
    rest = (await api.get(next_url)).text
    assert rest.count("?version=") == 6 and "Show the latest version" in rest


async def test_the_live_fragment_renders_alone(api: httpx.AsyncClient) -> None:
    run = await flow_run(api, "frag-run")
    await artifact(api, key="live", type="markdown", data="x", flow_run_id=run["id"])
    await artifact(api, type="markdown", data="y")
    response = await api.get("/artifacts?fragment=artifacts")
    assert response.status_code == 200, response.text
    assert 'href="/artifacts/live"' in response.text and "frag-run" in response.text
    assert "/artifacts/unkeyed/" in response.text and "<html" not in response.text
