"""Housekeeping: late runs, silent workers, expired leases, stuck cancellations.

Each pass runs every step in `STEPS`, each in its own transaction, so one
failing step (logged) never stops the others. On PostgreSQL each step first
takes the housekeeping leader lock: when several replicas share the database,
one of them does a step at a time and the others skip it, so no transition is
written twice. A new step is one more line in `STEPS`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.states import utcnow
from skyrun.server.db import (
    claims,
    dialect,
    flow_run_heartbeats,
    housekeeping,
    idempotency,
    work_pools,
)
from skyrun.server.db.engine import Database
from skyrun.settings import Settings

logger = logging.getLogger("skyrun.server.housekeeping")


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[AsyncSession, Settings], Awaitable[object]]


STEPS: list[Step] = [
    Step("late runs", lambda s, cfg: housekeeping.mark_late_runs(s, cfg.late_after_seconds, utcnow())),
    Step("silent workers", lambda s, cfg: work_pools.mark_silent_workers_offline(s, cfg.worker_offline_after_missed, utcnow())),
    Step("expired leases", lambda s, cfg: claims.recover_expired_leases(s, utcnow(), cfg.claim_lease_expiries)),
    Step("stuck cancellations", lambda s, cfg: housekeeping.finish_stuck_cancellations(s, cfg.cancelling_timeout_seconds, utcnow())),
    Step("silent flow runs", lambda s, cfg: flow_run_heartbeats.crash_silent_runs(s, cfg.flow_run_heartbeat_timeout, utcnow())),
    Step("old idempotency keys", lambda s, cfg: idempotency.delete_expired_keys(s, cfg.idempotency_key_retention_seconds, utcnow())),
]  # fmt: skip


async def run_step(database: Database, settings: Settings, step: Step) -> bool:
    """Run one step in its own transaction if this replica leads; returns whether it did."""
    async with database.session() as session, session.begin():
        if not await dialect.try_leader_lock(session, "housekeeping"):
            return False
        await step.run(session, settings)
        return True


def housekeeping_pass(settings: Settings) -> Callable[[Database], Awaitable[None]]:
    async def run(database: Database) -> None:
        for step in STEPS:
            try:
                await run_step(database, settings, step)
            except Exception:
                logger.exception(
                    "housekeeping step %r failed; the other steps still run", step.name
                )

    return run
