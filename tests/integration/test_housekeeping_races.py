"""Housekeeping never moves a run that moved on between its query and its change.

A service picks runs with a plain query (an expired lease, an overdue run, a
stuck cancellation), then changes each under the run's row lock. In between,
the run's own process may start it, or its worker may finish it. The rules
alone would let a RUNNING run go back to SCHEDULED (and run a second time), a
claimed run go back to SCHEDULED, or a finished run be forced to CANCELLED, so
each change is made only if the run is still as the query saw it.

On PostgreSQL the race is real (another connection commits in between); the
tests make it happen at a chosen moment. SQLite has one writer at a time, so
there the checks are exercised without a concurrent writer.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from test_claims import _claim_at, _soon, body, history, pool_with_runs

from skyrun.schemas.orchestration import Decision
from skyrun.schemas.states import StateCreate, StateType
from skyrun.server.db import claims, flow_runs, housekeeping
from skyrun.server.db.engine import Database
from skyrun.settings import Settings


@pytest.fixture
async def db(api_settings: Settings) -> Any:
    database = Database(api_settings.resolved_database_url)
    yield database
    await database.dispose()


async def _set(db: Database, run_id: uuid.UUID, state: StateCreate, now: datetime) -> None:
    async with db.session() as s, s.begin():
        response = await flow_runs.set_flow_run_state(s, run_id, state, now=now)
        assert response.decision == Decision.ACCEPT, response


async def test_a_change_whose_expectation_no_longer_holds_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, db: Database
) -> None:
    [run_id] = await pool_with_runs(api, 1)
    async with db.session() as s, s.begin():
        response = await flow_runs.set_flow_run_state(
            s,
            uuid.UUID(run_id),
            StateCreate(type=StateType.CANCELLED),
            expect=lambda run: run.state_type == StateType.PENDING.value,
        )
    assert response.decision == Decision.REJECT
    assert "changed since it was chosen" in (response.reason or "")
    assert [t for t, _ in await history(db, run_id)] == ["SCHEDULED"]


async def test_a_run_started_after_its_lease_was_found_expired_keeps_running(
    api: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The double execution this guards against: the run's process starts it just as
    housekeeping finds its lease expired; rescheduling it then would run it twice."""
    await pool_with_runs(api, 1)
    now = _soon()
    [run_id] = await _claim_at(db, "w", now, lease=1)
    later = now + timedelta(seconds=5)
    original = claims._times_rescheduled

    async def started_meanwhile(session: Any, flow_run_id: uuid.UUID) -> int:
        # Between housekeeping's query and its change, the run's process starts it
        # (another connection; on SQLite the single writer makes it wait, so it
        # runs before housekeeping's transaction instead).
        if db.dialect == "postgresql":
            await _set(db, flow_run_id, StateCreate(type=StateType.RUNNING), later)
        return await original(session, flow_run_id)

    monkeypatch.setattr(claims, "_times_rescheduled", started_meanwhile)
    async with db.session() as s, s.begin():
        if db.dialect != "postgresql":
            # SQLite: the process's RUNNING lands first; the query must not pick the run.
            await flow_runs.set_flow_run_state(
                s, run_id, StateCreate(type=StateType.RUNNING), now=later
            )
        assert await claims.recover_expired_leases(s, later, 3) == (0, 0)
    assert [t for t, _ in await history(db, run_id)] == ["SCHEDULED", "PENDING", "RUNNING"]


async def test_late_marking_leaves_a_run_claimed_meanwhile_alone(
    api: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    [run_id] = await pool_with_runs(api, 1)
    now = _soon() + timedelta(minutes=5)
    original = flow_runs.set_flow_run_state
    claimed: list[uuid.UUID] = []

    async def claimed_first(session: Any, flow_run_id: uuid.UUID, *args: Any, **kw: Any) -> Any:
        if db.dialect == "postgresql" and not claimed:
            # A worker claims it just before the Late renaming takes the row lock (the
            # claim's own state change comes through here too, and passes on).
            claimed.append(flow_run_id)
            await _claim_at(db, "w", now)
        return await original(session, flow_run_id, *args, **kw)

    monkeypatch.setattr(flow_runs, "set_flow_run_state", claimed_first)
    async with db.session() as s, s.begin():
        marked = await housekeeping.mark_late_runs(s, 15, now)
    if db.dialect == "postgresql":
        assert marked == 0
        # Still claimed: SCHEDULED/Late now would hand it to a second worker.
        assert [t for t, _ in await history(db, run_id)] == ["SCHEDULED", "PENDING"]
    else:
        assert marked == 1


async def test_a_stuck_cancellation_that_ended_meanwhile_keeps_its_own_final_state(
    api: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    [run_id] = await pool_with_runs(api, 1)
    now = _soon()
    [claimed] = await _claim_at(db, "w", now)
    await _set(db, claimed, StateCreate(type=StateType.RUNNING), now)
    await _set(db, claimed, StateCreate(type=StateType.CANCELLING), now)
    later = now + timedelta(hours=1)
    original = flow_runs.set_flow_run_state

    async def completed_first(session: Any, flow_run_id: uuid.UUID, *args: Any, **kw: Any) -> Any:
        if db.dialect == "postgresql" and kw.get("force"):
            # Its worker confirms just before the forced change takes the row lock.
            await _set(db, flow_run_id, StateCreate(type=StateType.CANCELLED), later)
        return await original(session, flow_run_id, *args, **kw)

    monkeypatch.setattr(flow_runs, "set_flow_run_state", completed_first)
    async with db.session() as s, s.begin():
        forced = await housekeeping.finish_stuck_cancellations(s, 60, later)
    states = await history(db, run_id)
    if db.dialect == "postgresql":
        assert forced == 0
        assert [t for t, _ in states][-1:] == ["CANCELLED"]
        assert all("forced" not in str(n) for _, n in states)
        assert len([t for t, _ in states if t == "CANCELLED"]) == 1
    else:
        assert forced == 1  # nothing happened meanwhile: forced, as before
    body(await api.get(f"/api/flow_runs/{run_id}"))
