"""The client's two transports give the same answers: HTTP to a server, ASGI in-process.

The embedded transport calls the app without any HTTP library, so what httpx
used to do for it (encode paths, queries and bodies, report errors) is shown
here against a real `skyrun server start`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from processes import ServerProcess
from skyrun.client.client import SkyrunClient
from skyrun.client.errors import ObjectNotFound, ServerUnreachable, SkyrunAPIError
from skyrun.client.transport import encode_query
from skyrun.schemas.work_pools import WorkPoolCreate
from skyrun.server.app import create_app
from skyrun.settings import Settings


def test_queries_drop_none_repeat_lists_and_lowercase_bools() -> None:
    query = encode_query({"a": None, "b": True, "c": [1, 2], "d": "x y&z", "e": False})
    assert query == "b=true&c=1&c=2&d=x+y%26z&e=false"
    assert encode_query(None) == ""


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = ServerProcess(tmp_path_factory.mktemp("server-home"))
    yield server.api_url
    server.stop()


@pytest.fixture(params=["embedded", "http"])
def client(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SkyrunClient]:
    for name in list(os.environ):
        if name.startswith("SKYRUN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SKYRUN_HOME", str(tmp_path))
    api_url = request.getfixturevalue("server_url") if request.param == "http" else None
    client = SkyrunClient(Settings(home=tmp_path, api_url=api_url, client_retries=0))
    yield client
    client.close()


def test_paths_queries_and_bodies_arrive_as_sent(client: SkyrunClient) -> None:
    name = f"hello wörld {client.embedded}"  # a space and a non-ASCII letter in the path
    flow = client.create_flow(name, tags=["ünïcode", "a&b"])
    found = client.request("GET", f"flows/name/{name}").json()
    assert (found["id"], found["tags"]) == (str(flow.id), ["ünïcode", "a&b"])

    client.set_variable("greeting", {"text": "héllo ✓", "n": [1, 2.5, None]})
    assert client.read_variable("greeting").value == {"text": "héllo ✓", "n": [1, 2.5, None]}
    page = client.request("GET", "variables", params={"limit": 1, "offset": 0}).json()
    assert page["count"] >= 1 and len(page["items"]) == 1


def test_errors_are_mapped_the_same_way(client: SkyrunClient) -> None:
    with pytest.raises(ObjectNotFound) as missing:
        client.request("GET", "flows/name/no such flow")
    assert missing.value.status_code == 404
    with pytest.raises(SkyrunAPIError) as invalid:
        client.request("POST", "flows", json={"tags": "not-a-list"})
    assert invalid.value.status_code == 422
    assert "name" in invalid.value.detail and "tags" in invalid.value.detail
    with pytest.raises(SkyrunAPIError) as bad_query:
        client.request("GET", "variables", params={"limit": "many"})
    assert bad_query.value.status_code == 422 and "limit" in bad_query.value.detail


def test_a_body_that_is_not_json_is_refused_before_sending(client: SkyrunClient) -> None:
    with pytest.raises(ValueError):
        client.request("PUT", "variables/x", json={"value": float("nan")})


def test_work_routes_answer_from_the_first_request(client: SkyrunClient) -> None:
    # The embedded app adds these routes on demand: the first request must reach them.
    pool = client.create_work_pool(WorkPoolCreate(name=f"pool-{client.embedded}", type="process"))
    assert [p.name for p in client.list_work_pools()] == [pool.name]
    with pytest.raises(ObjectNotFound, match="deployment"):
        client.read_deployment_by_name("nothing", "here")


def test_a_closed_embedded_backend_is_unreachable(tmp_path: Path) -> None:
    client = SkyrunClient(Settings(home=tmp_path, api_url=None, client_retries=0))
    client.create_flow("before")
    client.close()
    with pytest.raises(ServerUnreachable, match="closed"):
        client.create_flow("after")


def test_an_app_with_work_routes_on_demand_documents_them(tmp_path: Path) -> None:
    eager = create_app(Settings(home=tmp_path), run_services=False).openapi()
    lazy = create_app(
        Settings(home=tmp_path), run_services=False, work_routes_on_demand=True
    ).openapi()
    assert "/api/work_pools/{name}/claim" in lazy["paths"]
    assert sorted(lazy["paths"]) == sorted(eager["paths"])
