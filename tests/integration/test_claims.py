"""Claims that survive lost replies, leases that expire, and limits that hold under races.

On real SQLite and PostgreSQL databases: through the API (the claim and
heartbeat routes) where the request is what matters, and through the
repositories with an explicit clock where a lease's expiry is.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from skyrun.schemas.states import StateType, utcnow
from skyrun.schemas.work_pools import ClaimRequest, WorkerHeartbeat
from skyrun.server.db import claims, dialect, work_pools
from skyrun.server.db.engine import Database
from skyrun.server.db.models import FlowRun, FlowRunState, Worker
from skyrun.server.services import claiming
from skyrun.settings import Settings


def body(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


async def pool_with_runs(api: httpx.AsyncClient, runs: int, **pool: Any) -> list[str]:
    """A process pool "pool" (with `pool`'s fields), a deployment on it, and `runs` due runs."""
    body(await api.post("/api/work_pools", json={"name": "pool", "type": "process", **pool}), 201)
    deployment = body(
        await api.post(
            "/api/deployments",
            json={
                "flow_name": "etl",
                "name": "d",
                "entrypoint": "f.py:etl",
                "work_pool_name": "pool",
            },
        )
    )
    return [
        body(await api.post(f"/api/deployments/{deployment['id']}/runs", json={}), 201)["id"]
        for _ in range(runs)
    ]


async def claim(api: httpx.AsyncClient, worker: str = "w", **fields: Any) -> list[str]:
    response = await api.post(
        "/api/work_pools/pool/claim", json={"worker_name": worker, "limit": 1, **fields}
    )
    return [item["flow_run"]["id"] for item in body(response)["runs"]]


async def history(db: Database, run_id: str | uuid.UUID) -> list[tuple[str, str]]:
    async with db.session() as s:
        rows = await s.execute(
            sa.select(FlowRunState.type, FlowRunState.name)
            .where(FlowRunState.flow_run_id == uuid.UUID(str(run_id)))
            .order_by(FlowRunState.timestamp, FlowRunState.id)
        )
        return [(t, n) for t, n in rows.all()]


@pytest.fixture
async def db(api_settings: Settings) -> Any:
    database = Database(api_settings.resolved_database_url)
    yield database
    await database.dispose()


# -- a claim whose reply was lost ---------------------------------------------------


async def test_a_retried_claim_gets_the_runs_of_the_first_and_claims_no_more(
    api: httpx.AsyncClient, db: Database
) -> None:
    first_run, second_run = await pool_with_runs(api, 2)
    first = await claim(api, claim_key="poll-1")
    # The reply to that claim was lost: the worker sends it again, with its key.
    again = await claim(api, claim_key="poll-1", limit=5)
    assert again == first
    assert len(first) == 1
    # Its next poll has a new key and gets the other run.
    following = await claim(api, claim_key="poll-2", limit=5)
    assert following == [r for r in (first_run, second_run) if r not in first]
    for run_id in (first_run, second_run):
        assert [t for t, _ in await history(db, run_id)] == ["SCHEDULED", "PENDING"]


async def test_a_claim_key_is_the_workers_own(api: httpx.AsyncClient) -> None:
    await pool_with_runs(api, 2)
    mine = await claim(api, "a", claim_key="same-key")
    # Another worker that happens to send the same key claims runs of its own.
    theirs = await claim(api, "b", claim_key="same-key")
    assert len(mine) == len(theirs) == 1
    assert mine != theirs


# -- leases -------------------------------------------------------------------------


async def _claim_at(db: Database, worker: str, now: datetime, lease: float = 10) -> list[uuid.UUID]:
    async with db.session() as s, s.begin():
        pool = await work_pools.read_work_pool_row(s, "pool")
        row = await work_pools.heartbeat(
            s, pool, WorkerHeartbeat(name=worker, heartbeat_interval=60), now
        )
        return await claims.claim_runs(
            s, pool, worker_id=row.id, queue_names=[], limit=1, lease_seconds=lease, now=now
        )


async def _expire(db: Database, now: datetime, max_expiries: int = 3) -> tuple[int, int]:
    async with db.session() as s, s.begin():
        return await claims.recover_expired_leases(s, now, max_expiries)


def _soon() -> datetime:
    """A clock for the repositories a little ahead of the runs the API just created."""
    return utcnow() + timedelta(minutes=1)


async def test_a_lease_runs_out_even_while_its_worker_heartbeats(
    api: httpx.AsyncClient, db: Database
) -> None:
    (run_id,) = await pool_with_runs(api, 1)
    now = _soon()
    assert await _claim_at(db, "alive", now) == [uuid.UUID(run_id)]
    # The worker keeps heartbeating but never names the run (the claim's reply was lost).
    async with db.session() as s, s.begin():
        pool = await work_pools.read_work_pool_row(s, "pool")
        await work_pools.heartbeat(
            s,
            pool,
            WorkerHeartbeat(name="alive", heartbeat_interval=60),
            now + timedelta(seconds=20),
        )
    assert await _expire(db, now + timedelta(seconds=5)) == (0, 0)  # the lease still holds
    assert await _expire(db, now + timedelta(seconds=30)) == (1, 0)
    assert (await history(db, run_id))[-1] == ("SCHEDULED", "Rescheduled")
    async with db.session() as s:
        run = await s.get(FlowRun, uuid.UUID(run_id))
        assert run is not None and (run.worker_id, run.lease_expires, run.claim_key) == (
            None,
            None,
            None,
        )
        worker = await s.scalar(sa.select(Worker).where(Worker.name == "alive"))
        assert worker is not None and worker.status == "ONLINE"
    # Any worker may claim it again.
    assert await _claim_at(db, "other", now + timedelta(seconds=31)) == [uuid.UUID(run_id)]


async def test_a_heartbeat_keeps_the_leases_of_the_runs_it_names(
    api: httpx.AsyncClient, db: Database
) -> None:
    launching, forgotten = await pool_with_runs(api, 2)
    claimed = [*await claim(api, "w", lease_seconds=1), *await claim(api, "w", lease_seconds=1)]
    assert sorted(claimed) == sorted([launching, forgotten])
    async with db.session() as s:
        first_lease = max(
            run.lease_expires for run in await s.scalars(sa.select(FlowRun)) if run.lease_expires
        )
    # Another worker naming the run changes nothing: the lease is its claimer's to keep.
    body(
        await api.post(
            "/api/work_pools/pool/workers/heartbeat",
            json={"name": "intruder", "flow_run_ids": [forgotten]},
        )
    )
    body(
        await api.post(
            "/api/work_pools/pool/workers/heartbeat",
            json={"name": "w", "heartbeat_interval": 5, "flow_run_ids": [launching]},
        )
    )
    # Past the claims' one-second leases, within the heartbeat's (claim_lease_seconds).
    assert await _expire(db, first_lease + timedelta(seconds=30)) == (1, 0)
    assert (await history(db, launching))[-1] == ("PENDING", "Pending")
    assert (await history(db, forgotten))[-1] == ("SCHEDULED", "Rescheduled")


async def test_a_run_whose_lease_keeps_running_out_is_crashed(
    api: httpx.AsyncClient, db: Database
) -> None:
    (run_id,) = await pool_with_runs(api, 1)
    now = _soon()
    for _ in range(2):
        assert await _claim_at(db, "w", now) == [uuid.UUID(run_id)]
        now += timedelta(minutes=1)
        assert await _expire(db, now, max_expiries=3) == (1, 0)
    assert await _claim_at(db, "w", now) == [uuid.UUID(run_id)]
    assert await _expire(db, now + timedelta(minutes=1), max_expiries=3) == (0, 1)
    run = body(await api.get(f"/api/flow_runs/{run_id}"))
    assert run["state"]["type"] == "CRASHED"
    assert "lease ran out 3 times" in run["state"]["message"]


async def test_work_pool_requests_refuse_unbounded_numbers(api: httpx.AsyncClient) -> None:
    await pool_with_runs(api, 0)
    for method, path, payload in (
        ("POST", "workers/heartbeat", {"name": "w", "heartbeat_interval": 1e300}),
        ("POST", "claim", {"worker_name": "w", "lease_seconds": 1e300}),
        ("POST", "claim", {"worker_name": "w", "claim_key": ""}),
        ("POST", "queues", {"name": "q", "priority": 3.2e19}),
        ("PATCH", "queues/default", {"concurrency_limit": 2**31}),
        ("PATCH", "", {"concurrency_limit": 2**40}),
    ):
        response = await api.request(
            method, f"/api/work_pools/pool/{path}".rstrip("/"), json=payload
        )
        assert response.status_code == 422, (path, payload, response.text)
    for hours in ("1e300", "nan", "inf", "-7e16"):
        response = await api.get("/api/work_pools/pool/scheduled_runs", params={"hours": hours})
        assert response.status_code == 422, (hours, response.text)


# -- limits under races -------------------------------------------------------------


@pytest.mark.parametrize("limits", ["pool", "queue", "deployment"])
async def test_concurrent_claims_never_exceed_the_concurrency_limit(
    api: httpx.AsyncClient, db: Database, limits: str
) -> None:
    pool_fields = {"concurrency_limit": 3} if limits == "pool" else {}
    # More due runs than one claim looks at (it locks its candidates), so that
    # claims running at once find runs of their own to take.
    await pool_with_runs(api, 80, **pool_fields)
    if limits == "queue":
        body(await api.patch("/api/work_pools/pool/queues/default", json={"concurrency_limit": 3}))
    if limits == "deployment":
        [deployment] = body(await api.get("/api/deployments"))["items"]
        patch = {"concurrency_limit": 3}
        body(await api.patch(f"/api/deployments/{deployment['id']}", json=patch))
    # 20 workers claim at once, each as many runs as it may: on PostgreSQL these
    # are 20 transactions on 20 connections, racing for the same slots.
    results = await asyncio.gather(
        *(claim(api, f"w{i}", limit=5, wait_seconds=0) for i in range(20))
    )
    claimed = [run for runs in results for run in runs]
    assert len(claimed) == 3, [len(r) for r in results]
    async with db.session() as s:
        active = await s.scalar(
            sa.select(sa.func.count())
            .select_from(FlowRun)
            .where(FlowRun.state_type == StateType.PENDING.value)
        )
    assert active == 3


async def test_concurrent_claims_on_two_pools_never_exceed_a_deployments_limit(
    api: httpx.AsyncClient, db: Database
) -> None:
    """A deployment moved to another pool keeps its runs in the first: the pools' claim
    locks do not serialise claims on both, the deployment's own lock does."""
    await pool_with_runs(api, 40)
    body(await api.post("/api/work_pools", json={"name": "other", "type": "process"}), 201)
    moved = {"flow_name": "etl", "name": "d", "entrypoint": "f.py:etl"}
    moved |= {"work_pool_name": "other", "concurrency_limit": 3}
    deployment = body(await api.post("/api/deployments", json=moved))
    for _ in range(40):
        body(await api.post(f"/api/deployments/{deployment['id']}/runs", json={}), 201)

    async def claim_from(pool: str, worker: str) -> list[str]:
        response = await api.post(
            f"/api/work_pools/{pool}/claim", json={"worker_name": worker, "limit": 5}
        )
        return [item["flow_run"]["id"] for item in body(response)["runs"]]

    results = await asyncio.gather(
        *(claim_from("pool" if i % 2 else "other", f"w{i}") for i in range(20))
    )
    claimed = [run for runs in results for run in runs]
    assert len(claimed) == 3, [len(r) for r in results]
    async with db.session() as s:
        active = await s.scalar(
            sa.select(sa.func.count())
            .select_from(FlowRun)
            .where(FlowRun.state_type == StateType.PENDING.value)
        )
    assert active == 3


# -- the pool's claim lock ----------------------------------------------------------


async def test_the_claim_lock_is_per_pool(api: httpx.AsyncClient, db: Database) -> None:
    """While one claim holds its pool's lock, a claim on another pool goes ahead."""
    await pool_with_runs(api, 0)
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: there is no per-pool lock")
    body(await api.post("/api/work_pools", json={"name": "other", "type": "process"}), 201)
    async with db.session() as s, s.begin():
        pool = await work_pools.read_work_pool_row(s, "pool")
        await dialect.lock_pool_for_claims(s, pool.id)
        response = await asyncio.wait_for(
            api.post("/api/work_pools/other/claim", json={"worker_name": "w"}), 30
        )
        assert response.status_code == 200


async def test_a_waiting_claim_whose_client_has_gone_claims_nothing(
    api: httpx.AsyncClient, db: Database, api_settings: Settings
) -> None:
    """Its client timed out (and may be retrying with the same key elsewhere): a run
    claimed for it now would sit PENDING until its lease ran out."""
    await pool_with_runs(api, 0)
    gone = asyncio.Event()

    async def disconnected() -> bool:
        return gone.is_set()

    request = ClaimRequest(worker_name="w", wait_seconds=60, claim_key="k")
    waiting = asyncio.create_task(claiming.claim(db, api_settings, "pool", request, disconnected))
    while not [w for w in body(await api.get("/api/work_pools/pool/workers")) if w["name"] == "w"]:
        await asyncio.sleep(0.05)  # until the claim has registered its worker: it waits
    gone.set()
    deployment = body(await api.get("/api/deployments"))["items"][0]
    run = body(await api.post(f"/api/deployments/{deployment['id']}/runs", json={}), 201)
    response = await asyncio.wait_for(waiting, 30)  # woken by the new run
    assert response.runs == []
    assert body(await api.get(f"/api/flow_runs/{run['id']}"))["state"]["type"] == "SCHEDULED"
