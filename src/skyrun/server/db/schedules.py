"""Deployment schedules: checking and storing them, and what the scheduler reads."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.deployments import DeploymentScheduleCreate
from skyrun.server.db.models import Deployment, DeploymentSchedule, FlowRun
from skyrun.server.errors import Invalid


def checked_schedules(schedules: list[DeploymentScheduleCreate]) -> list[dict[str, Any]]:
    """The schedules as stored, each parsed and computable; Invalid names the first bad one.

    CPU-bound (a schedule's first occurrence is computed, within a budget):
    callers on the event loop run it in a thread.
    """
    # Imported here, not at the top: schedules bring croniter and dateutil, which
    # the embedded mode, running flows with no deployment, should not carry.
    from pydantic import ValidationError

    from skyrun.schedules import accept_schedule

    checked = []
    for i, item in enumerate(schedules):
        try:
            parsed = accept_schedule(item.schedule)
        except ValidationError as exc:
            reasons = "; ".join(str(error["msg"]) for error in exc.errors())
            raise Invalid(f"schedules[{i}]: {reasons}") from exc
        except ValueError as exc:
            raise Invalid(f"schedules[{i}]: {exc}") from exc
        checked.append(parsed.model_dump(mode="json"))
    return checked


async def replace_schedules(
    session: AsyncSession,
    deployment_id: uuid.UUID,
    checked: list[dict[str, Any]],
    given: list[DeploymentScheduleCreate],
) -> None:
    """The deployment's schedules become `checked` (with `given`'s active flags)."""
    await session.execute(
        sa.delete(DeploymentSchedule).where(DeploymentSchedule.deployment_id == deployment_id)
    )
    for schedule, item in zip(checked, given, strict=True):
        session.add(
            DeploymentSchedule(
                id=uuid.uuid4(), deployment_id=deployment_id, schedule=schedule, active=item.active
            )
        )


async def active_schedules(session: AsyncSession) -> list[tuple[DeploymentSchedule, Deployment]]:
    """Every active schedule of a deployment that is not paused, with its deployment."""
    rows = await session.execute(
        sa.select(DeploymentSchedule, Deployment)
        .join(Deployment, Deployment.id == DeploymentSchedule.deployment_id)
        .where(DeploymentSchedule.active.is_(True), Deployment.paused.is_(False))
        .order_by(DeploymentSchedule.id)
    )
    return [(schedule, deployment) for schedule, deployment in rows.all()]


async def existing_run_keys(
    session: AsyncSession, deployment_id: uuid.UUID, keys: list[str]
) -> set[str]:
    """Which of these idempotency keys the deployment's runs already carry."""
    found = await session.scalars(
        sa.select(FlowRun.idempotency_key).where(
            FlowRun.deployment_id == deployment_id, FlowRun.idempotency_key.in_(keys)
        )
    )
    return {key for key in found if key is not None}
