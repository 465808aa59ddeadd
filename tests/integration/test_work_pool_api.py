"""The work-pool API on a real database (SQLite and PostgreSQL): template warnings and
errors, and the long-polling claim that workers wait on."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

UNUSED_WARNING = "variable 'unused' is declared but not used in job_configuration"

TEMPLATE_WITH_UNUSED = {
    "job_configuration": {"command": "{{ command }}", "env": {"MODE": "{{ mode }}"}},
    "variables": {
        "type": "object",
        "properties": {
            "command": {"type": ["string", "null"], "default": None},
            "mode": {"type": "string", "default": "fast"},
            "unused": {"type": "integer", "default": 1},
        },
    },
}

# Two placeholders naming undeclared variables: two problems in one answer.
TEMPLATE_WITH_TWO_PROBLEMS = {
    "job_configuration": {"command": ["run", "{{ a }}", "--x={{ b }}"]},
    "variables": {"type": "object", "properties": {}},
}


def body(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


async def create_pool(api: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    return body(
        await api.post("/api/work_pools", json={"name": name, "type": "process", **fields}), 201
    )


# -- template warnings and errors -------------------------------------------------


async def test_creating_a_pool_reports_unused_template_variables(api: httpx.AsyncClient) -> None:
    created = await create_pool(api, "custom", base_job_template=TEMPLATE_WITH_UNUSED)
    assert created["warnings"] == [UNUSED_WARNING]
    assert created["base_job_template"] == TEMPLATE_WITH_UNUSED

    # The warning is about the request: it is not stored, so reading does not repeat it.
    read = body(await api.get("/api/work_pools/custom"))
    assert "warnings" not in read
    assert read["base_job_template"] == TEMPLATE_WITH_UNUSED
    assert "warnings" not in body(await api.get("/api/work_pools"))[0]

    # The process type's default template uses every variable it declares.
    assert (await create_pool(api, "default"))["warnings"] == []


async def test_updating_a_pool_reports_unused_template_variables(api: httpx.AsyncClient) -> None:
    await create_pool(api, "main")
    updated = body(
        await api.patch("/api/work_pools/main", json={"base_job_template": TEMPLATE_WITH_UNUSED})
    )
    assert updated["warnings"] == [UNUSED_WARNING]
    assert updated["base_job_template"] == TEMPLATE_WITH_UNUSED

    # A change that sends no template warns about nothing, whatever the stored one holds.
    limited = body(await api.patch("/api/work_pools/main", json={"concurrency_limit": 2}))
    assert limited["warnings"] == []
    assert limited["concurrency_limit"] == 2


async def test_an_invalid_template_is_422_with_a_message_that_reads_once(
    api: httpx.AsyncClient,
) -> None:
    await create_pool(api, "main")
    created = await api.post(
        "/api/work_pools",
        json={"name": "bad", "type": "process", "base_job_template": TEMPLATE_WITH_TWO_PROBLEMS},
    )
    updated = await api.patch(
        "/api/work_pools/main", json={"base_job_template": TEMPLATE_WITH_TWO_PROBLEMS}
    )
    for response in (created, updated):
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        detail = error["msg"]
        assert detail.startswith("invalid base job template: 2 problems:\n"), detail
        assert detail.count("invalid base job template") == 1, detail
        assert "job_configuration.command[1]: placeholder '{{ a }}'" in detail
        assert "job_configuration.command[2]: placeholder '{{ b }}'" in detail
    assert [pool["name"] for pool in body(await api.get("/api/work_pools"))] == ["main"]


# -- long-polling claims ----------------------------------------------------------


async def claim(
    api: httpx.AsyncClient, pool: str, wait_seconds: float
) -> tuple[dict[str, Any], float]:
    """The claim's answer and how long, in seconds, it took to come."""
    started = time.monotonic()
    response = await api.post(
        f"/api/work_pools/{pool}/claim",
        json={"worker_name": "waiting-worker", "wait_seconds": wait_seconds},
    )
    return body(response), time.monotonic() - started


async def worker_names(api: httpx.AsyncClient, pool: str) -> list[str]:
    return [worker["name"] for worker in body(await api.get(f"/api/work_pools/{pool}/workers"))]


async def test_a_waiting_claim_returns_a_run_created_while_it_waits(
    api: httpx.AsyncClient,
) -> None:
    await create_pool(api, "waiting")
    deployment = body(
        await api.post(
            "/api/deployments",
            json={
                "flow_name": "etl",
                "name": "nightly",
                "entrypoint": "flows.py:etl",
                "work_pool_name": "waiting",
            },
        )
    )
    wait_seconds = 20.0
    claiming = asyncio.create_task(claim(api, "waiting", wait_seconds))
    # The claim's first pass registers its worker: from then on it is waiting.
    deadline = time.monotonic() + 10
    while "waiting-worker" not in await worker_names(api, "waiting"):
        assert time.monotonic() < deadline, "the claim never registered its worker"
        await asyncio.sleep(0.05)
    assert not claiming.done(), claiming.result()

    run = body(await api.post(f"/api/deployments/{deployment['id']}/runs", json={}), 201)
    claimed, elapsed = await asyncio.wait_for(claiming, wait_seconds + 10)

    assert [item["flow_run"]["id"] for item in claimed["runs"]] == [run["id"]]
    assert claimed["runs"][0]["work_pool_name"] == "waiting"
    # Functional, not a timing target: a claim that only returned at its deadline
    # would mean the new run did not end the wait.
    assert elapsed < wait_seconds / 2, f"the claim took {elapsed:.1f}s"
    state = body(await api.get(f"/api/flow_runs/{run['id']}"))["state"]["type"]
    assert state == "PENDING"


async def test_a_claim_with_nothing_due_returns_empty_after_its_wait(
    api: httpx.AsyncClient,
) -> None:
    await create_pool(api, "idle")
    wait_seconds = 1.0
    claimed, elapsed = await claim(api, "idle", wait_seconds)
    assert claimed["runs"] == []
    assert claimed["pool_paused"] is False
    assert elapsed >= wait_seconds  # it waited rather than answering at once
