"""Telling waiting claims that work may have become claimable, from every writer at once.

A claim that found nothing waits (a long-poll) until something may have
changed. Instead of every route, service and repository remembering to say so,
the sessions of a `Database` watch what they flush: a flow run created or moved
to SCHEDULED (due now or later), a run leaving PENDING/RUNNING/CANCELLING (a
concurrency slot freed), a run deleted, a work pool or queue changed (resumed,
its limit raised), a deployment's concurrency limit changed. When a transaction that did any of these commits:

* this process's waiters are woken (`RunNotifier.changed`);
* on PostgreSQL, a NOTIFY on `dialect.WORK_CHANNEL` is sent in the transaction
  itself, so it reaches every replica's listener (listen.py) once it commits,
  and never if it rolls back.

Bulk statements (`sa.update`, `sa.delete`) bypass these hooks; none of them
makes a run claimable.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction

from skyrun.schemas.states import StateType
from skyrun.server.db import dialect
from skyrun.server.db.models import Deployment, FlowRun, WorkPool, WorkQueue
from skyrun.server.notify import RunNotifier

_ACTIVE = frozenset({StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value})
_CHANGED = "skyrun.work_changed"  # session.info: this transaction changed claimable work
_NOTIFIED = "skyrun.work_notified"  # session.info: and sent its NOTIFY


def session_class(notifier: RunNotifier, *, postgres: bool) -> type[Session]:
    """A Session class whose transactions wake `notifier` (and NOTIFY, on PostgreSQL)."""
    cls: type[Session] = type("SkyrunSession", (Session,), {})

    @event.listens_for(cls, "before_flush")
    def _look(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
        if not session.info.get(_CHANGED) and _claimable_work_changed(session):
            session.info[_CHANGED] = True

    @event.listens_for(cls, "after_flush")
    def _notify(session: Session, _flush: UOWTransaction) -> None:
        if postgres and session.info.get(_CHANGED) and not session.info.get(_NOTIFIED):
            session.info[_NOTIFIED] = True
            dialect.notify_work(session.connection())

    @event.listens_for(cls, "after_commit")
    def _wake(session: Session) -> None:
        changed = session.info.pop(_CHANGED, False)
        session.info.pop(_NOTIFIED, None)
        if changed:
            notifier.changed()

    @event.listens_for(cls, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(_CHANGED, None)
        session.info.pop(_NOTIFIED, None)

    return cls


def _claimable_work_changed(session: Session) -> bool:
    for obj in session.new:
        if isinstance(obj, FlowRun) and obj.state_type == StateType.SCHEDULED.value:
            return True
    for obj in session.dirty:
        if isinstance(obj, WorkPool | WorkQueue) and session.is_modified(obj):
            return True
        if (
            isinstance(obj, Deployment)
            and sa.inspect(obj).attrs.concurrency_limit.history.has_changes()
        ):
            return True
        if isinstance(obj, FlowRun):
            history = sa.inspect(obj).attrs.state_type.history
            if history.has_changes() and (
                obj.state_type == StateType.SCHEDULED.value
                or any(old in _ACTIVE for old in history.deleted)
            ):
                return True
    return any(isinstance(obj, FlowRun) and obj.state_type in _ACTIVE for obj in session.deleted)
