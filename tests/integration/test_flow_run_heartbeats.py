"""Running flow runs heartbeat; housekeeping makes CRASHED those whose heartbeats stopped.

On SQLite and PostgreSQL (the database functions and the housekeeping pass),
and in embedded mode (the engine's heartbeats, subflows included).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from processes import wait_for
from skyrun import flow
from skyrun.schemas.core import FlowCreate, FlowRunCreate
from skyrun.schemas.states import StateCreate, StateType
from skyrun.sdk.context import current_flow_run
from skyrun.server.db import flow_runs, flows
from skyrun.server.db.engine import Database
from skyrun.server.db.flow_run_heartbeats import crash_silent_runs, heartbeat_flow_run
from skyrun.server.db.models import FlowRun
from skyrun.server.services.housekeeping import housekeeping_pass
from skyrun.settings import Settings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TIMEOUT = 90.0


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.dispose()


async def _run(
    db: Database,
    state_type: StateType,
    *,
    entered: datetime,
    heartbeat: datetime | None = None,
) -> uuid.UUID:
    """A run that entered `state_type` at `entered` and last heartbeat at `heartbeat`."""
    async with db.session() as s, s.begin():
        flow_id = (await flows.get_or_create_flow(s, FlowCreate(name="etl"))).id
        run = await flow_runs.create_flow_run(
            s, FlowRunCreate(flow_id=flow_id, state=StateCreate(type=state_type, timestamp=entered))
        )
        if heartbeat is not None:
            await heartbeat_flow_run(s, run.id, now=heartbeat)
        return run.id


async def _state(db: Database, run_id: uuid.UUID) -> tuple[str | None, str | None]:
    async with db.session() as s:
        run = await s.get(FlowRun, run_id)
        assert run is not None
        return run.state_type, run.state_message


async def test_running_runs_whose_heartbeats_stopped_are_crashed(db: Database) -> None:
    long_ago = NOW - timedelta(seconds=TIMEOUT + 1)
    recently = NOW - timedelta(seconds=TIMEOUT - 1)
    silent = await _run(db, StateType.RUNNING, entered=long_ago, heartbeat=long_ago)
    never_beat = await _run(db, StateType.RUNNING, entered=long_ago)
    beating = await _run(db, StateType.RUNNING, entered=long_ago, heartbeat=recently)
    just_started = await _run(db, StateType.RUNNING, entered=recently)
    # Running again (a retry) since its last heartbeat: judged from the new start.
    restarted = await _run(db, StateType.RUNNING, entered=recently, heartbeat=long_ago)
    finished = await _run(db, StateType.COMPLETED, entered=long_ago)
    scheduled = await _run(db, StateType.SCHEDULED, entered=long_ago)

    async with db.session() as s, s.begin():
        assert await crash_silent_runs(s, TIMEOUT, NOW) == 2

    for run_id in (silent, never_beat):
        state_type, message = await _state(db, run_id)
        assert state_type == "CRASHED"
        assert message is not None and message.startswith(
            "no heartbeat from the process running it for 90s (SKYRUN_FLOW_RUN_HEARTBEAT_TIMEOUT)"
        )
    assert (await _state(db, beating))[0] == "RUNNING"
    assert (await _state(db, just_started))[0] == "RUNNING"
    assert (await _state(db, restarted))[0] == "RUNNING"
    assert (await _state(db, finished))[0] == "COMPLETED"
    assert (await _state(db, scheduled))[0] == "SCHEDULED"
    async with db.session() as s, s.begin():
        assert await crash_silent_runs(s, TIMEOUT, NOW) == 0  # nothing twice


async def test_a_heartbeat_answers_the_current_state(db: Database) -> None:
    run_id = await _run(db, StateType.RUNNING, entered=NOW)
    async with db.session() as s, s.begin():
        await flow_runs.set_flow_run_state(s, run_id, StateCreate(type=StateType.CANCELLING))
    async with db.session() as s, s.begin():
        state = await heartbeat_flow_run(s, run_id, now=NOW + timedelta(seconds=1))
    assert state.type == StateType.CANCELLING


async def test_housekeeping_crashes_silent_runs(db: Database, settings: Settings) -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    run_id = await _run(db, StateType.RUNNING, entered=an_hour_ago, heartbeat=an_hour_ago)
    await housekeeping_pass(settings.model_copy(update={"flow_run_heartbeat_timeout": 60.0}))(db)
    assert (await _state(db, run_id))[0] == "CRASHED"


# -- the engine, in embedded mode ---------------------------------------------------


def last_heartbeat(home: Path, run_id: uuid.UUID) -> str | None:
    with sqlite3.connect(home / "skyrun.db") as connection:
        row = connection.execute(
            "SELECT last_heartbeat FROM flow_runs WHERE id = ?", (run_id.hex,)
        ).fetchone()
    return row[0] if row else None


def wait_for_own_heartbeat(home: Path) -> uuid.UUID:
    context = current_flow_run()
    assert context is not None
    run_id = context.flow_run_id
    wait_for(lambda: last_heartbeat(home, run_id), 30, f"a heartbeat of flow run {run_id}")
    return run_id


def test_a_running_flow_and_its_subflow_heartbeat_until_they_end(
    sdk_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYRUN_FLOW_RUN_HEARTBEAT_INTERVAL", "0.05")

    @flow
    def child() -> uuid.UUID:
        return wait_for_own_heartbeat(sdk_home)

    @flow
    def parent() -> tuple[uuid.UUID, uuid.UUID]:
        return wait_for_own_heartbeat(sdk_home), child()

    parent_id, child_id = parent()

    assert last_heartbeat(sdk_home, parent_id) and last_heartbeat(sdk_home, child_id)
    # Ended runs are not heartbeat any more (after one that may have been on its way
    # as the run ended): several intervals later, nothing changed.
    time.sleep(0.3)
    beats = {run_id: last_heartbeat(sdk_home, run_id) for run_id in (parent_id, child_id)}
    time.sleep(0.3)
    assert {run_id: last_heartbeat(sdk_home, run_id) for run_id in beats} == beats
