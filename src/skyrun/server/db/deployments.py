"""Deployments: upsert by (flow, name), schedules, and runs created from them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.core import FlowCreate, FlowRunCreate
from skyrun.schemas.deployments import Deployment as DeploymentSchema
from skyrun.schemas.deployments import (
    DeploymentCreate,
    DeploymentRunCreate,
    DeploymentUpdate,
)
from skyrun.schemas.states import StateCreate, StateType, utcnow
from skyrun.server.db import flow_runs, work_pools
from skyrun.server.db.flows import get_or_create_flow
from skyrun.server.db.models import (
    Deployment,
    DeploymentSchedule,
    Flow,
    FlowRun,
    WorkPool,
    WorkQueue,
)
from skyrun.server.db.schedules import checked_schedules, replace_schedules
from skyrun.server.errors import Invalid, NotFound


async def _resolve_queue(
    session: AsyncSession, pool_name: str | None, queue_name: str | None
) -> uuid.UUID | None:
    if pool_name is None:
        if queue_name is not None:
            raise Invalid("work_queue_name needs a work_pool_name")
        return None
    queue = await work_pools.read_work_queue(
        session, pool_name, queue_name or work_pools.DEFAULT_QUEUE
    )
    return queue.id


# A limit is enforced where workers claim runs (claims.py); flow.serve() starts
# its runs itself, so a limit there would be silently ignored.
NO_POOL_NO_LIMIT = (
    "concurrency_limit: a deployment without a work pool (run by flow.serve()) cannot have "
    "one, since its limit holds where workers claim runs; give a work_pool_name, or leave "
    "concurrency_limit out"
)


async def upsert_deployment(session: AsyncSession, data: DeploymentCreate) -> Deployment:
    """Create the deployment, or replace the one with the same flow and name."""
    schedules = await asyncio.to_thread(checked_schedules, data.schedules)
    check_parameter_schema(data.parameter_openapi_schema)
    check_parameters(
        data.parameter_openapi_schema,
        data.parameters,
        need_all=any(item.active for item in data.schedules),
        who_needs="scheduled runs need",
    )
    if data.concurrency_limit is not None and data.work_pool_name is None:
        raise Invalid(NO_POOL_NO_LIMIT)
    flow = await get_or_create_flow(session, FlowCreate(name=data.flow_name))
    queue_id = await _resolve_queue(session, data.work_pool_name, data.work_queue_name)
    await check_job_variables(session, queue_id, data.job_variables)
    deployment = await session.scalar(
        sa.select(Deployment).where(Deployment.flow_id == flow.id, Deployment.name == data.name)
    )
    fields = data.model_dump(
        exclude={"flow_name", "work_pool_name", "work_queue_name", "schedules"}
    )
    if deployment is None:
        deployment = Deployment(id=uuid.uuid4(), flow_id=flow.id, work_queue_id=queue_id, **fields)
        session.add(deployment)
        await session.flush()
    else:
        for key, value in fields.items():
            setattr(deployment, key, value)
        deployment.work_queue_id = queue_id
        deployment.updated = utcnow()
        await clear_future_auto_runs(session, deployment.id)
    await replace_schedules(session, deployment.id, schedules, data.schedules)
    await session.flush()
    return deployment


async def clear_future_auto_runs(session: AsyncSession, deployment_id: uuid.UUID) -> int:
    """Delete the scheduler's not-yet-started runs, so it recreates them from the new settings."""
    result = await session.execute(
        sa.delete(FlowRun).where(
            FlowRun.deployment_id == deployment_id,
            FlowRun.auto_scheduled.is_(True),
            FlowRun.state_type == StateType.SCHEDULED.value,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def read_deployment_row(session: AsyncSession, deployment_id: uuid.UUID) -> Deployment:
    deployment = await session.get(Deployment, deployment_id)
    if deployment is None:
        raise NotFound.of("deployment", deployment_id)
    return deployment


async def read_deployment_by_name(session: AsyncSession, flow_name: str, name: str) -> Deployment:
    deployment = await session.scalar(
        sa.select(Deployment)
        .join(Flow, Flow.id == Deployment.flow_id)
        .where(Flow.name == flow_name, Deployment.name == name)
    )
    if deployment is None:
        raise NotFound(f"deployment '{flow_name}/{name}' not found")
    return deployment


async def to_schema(session: AsyncSession, deployment: Deployment) -> DeploymentSchema:
    row = (
        await session.execute(
            sa.select(Flow.name, WorkQueue.name, WorkPool.name)
            .select_from(Deployment)
            .join(Flow, Flow.id == Deployment.flow_id)
            .outerjoin(WorkQueue, WorkQueue.id == Deployment.work_queue_id)
            .outerjoin(WorkPool, WorkPool.id == WorkQueue.work_pool_id)
            .where(Deployment.id == deployment.id)
        )
    ).one()
    schedules = await session.scalars(
        sa.select(DeploymentSchedule)
        .where(DeploymentSchedule.deployment_id == deployment.id)
        .order_by(DeploymentSchedule.created)
    )
    return DeploymentSchema.model_validate(
        {
            **{c.key: getattr(deployment, c.key) for c in Deployment.__table__.columns},
            "flow_name": row[0],
            "work_queue_name": row[1],
            "work_pool_name": row[2],
            "schedules": list(schedules),
        }
    )


async def list_deployments(
    session: AsyncSession,
    *,
    flow_name: str | None,
    work_pool_name: str | None,
    limit: int,
    offset: int,
) -> tuple[list[DeploymentSchema], int]:
    query = (
        sa.select(Deployment)
        .join(Flow, Flow.id == Deployment.flow_id)
        .outerjoin(WorkQueue, WorkQueue.id == Deployment.work_queue_id)
        .outerjoin(WorkPool, WorkPool.id == WorkQueue.work_pool_id)
    )
    if flow_name is not None:
        query = query.where(Flow.name == flow_name)
    if work_pool_name is not None:
        query = query.where(WorkPool.name == work_pool_name)
    count = await session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(Flow.name, Deployment.name).limit(limit).offset(offset)
    )
    return [await to_schema(session, d) for d in rows], int(count or 0)


async def update_deployment(
    session: AsyncSession, deployment_id: uuid.UUID, data: DeploymentUpdate
) -> Deployment:
    deployment = await read_deployment_row(session, deployment_id)
    schedules = None
    if data.schedules is not None:
        schedules = await asyncio.to_thread(checked_schedules, data.schedules)
    if data.job_variables is not None:
        await check_job_variables(session, deployment.work_queue_id, data.job_variables)
    if data.parameters is not None or data.schedules is not None:
        scheduled = (
            any(item.active for item in data.schedules)
            if data.schedules is not None
            else await _has_active_schedule(session, deployment.id)
        )
        check_parameters(
            deployment.parameter_openapi_schema,
            data.parameters if data.parameters is not None else deployment.parameters,
            need_all=scheduled,
            who_needs="scheduled runs need",
        )
    changes = data.model_dump(exclude_unset=True, exclude={"schedules"})
    if changes.get("concurrency_limit") is not None and deployment.work_queue_id is None:
        raise Invalid(NO_POOL_NO_LIMIT)
    for key, value in changes.items():
        # Null leaves the others as they are; for the limit, null means "no limit"
        # (as for work pools and queues), and leaving it out keeps it.
        if value is not None or key == "concurrency_limit":
            setattr(deployment, key, value)
    if schedules is not None and data.schedules is not None:
        await replace_schedules(session, deployment.id, schedules, data.schedules)
    deployment.updated = utcnow()
    await clear_future_auto_runs(session, deployment.id)
    await session.flush()
    return deployment


async def _has_active_schedule(session: AsyncSession, deployment_id: uuid.UUID) -> bool:
    found = await session.scalar(
        sa.select(DeploymentSchedule.id)
        .where(DeploymentSchedule.deployment_id == deployment_id, DeploymentSchedule.active)
        .limit(1)
    )
    return found is not None


async def delete_deployment(session: AsyncSession, deployment_id: uuid.UUID) -> None:
    deployment = await read_deployment_row(session, deployment_id)
    await clear_future_auto_runs(session, deployment.id)
    await session.delete(deployment)


async def create_deployment_run(
    session: AsyncSession,
    deployment: Deployment,
    data: DeploymentRunCreate,
    *,
    auto_scheduled: bool = False,
    now: datetime | None = None,
) -> FlowRun:
    """A flow run of the deployment, SCHEDULED for now unless told otherwise."""
    now = now or utcnow()
    parameters = {**deployment.parameters, **data.parameters}
    check_parameters(deployment.parameter_openapi_schema, parameters, need_all=True)
    queue_id = deployment.work_queue_id
    if data.work_queue_name is not None:
        queue = await session.get(WorkQueue, deployment.work_queue_id) if queue_id else None
        if queue is None:
            raise Invalid("this deployment has no work pool; it cannot take a work_queue_name")
        pool = await session.get(WorkPool, queue.work_pool_id)
        assert pool is not None
        queue_id = (await work_pools.read_work_queue(session, pool.name, data.work_queue_name)).id
    await check_job_variables(session, queue_id, data.job_variables)
    if data.idempotency_key is not None:
        existing = await session.scalar(
            sa.select(FlowRun).where(
                FlowRun.deployment_id == deployment.id,
                FlowRun.idempotency_key == data.idempotency_key,
            )
        )
        if existing is not None:
            return existing
    state = data.state or StateCreate(
        type=StateType.SCHEDULED, scheduled_time=data.scheduled_time or now
    )
    if state.type == StateType.SCHEDULED and state.scheduled_time is None:
        state = state.model_copy(update={"scheduled_time": now})
    return await flow_runs.create_flow_run(
        session,
        FlowRunCreate(
            flow_id=deployment.flow_id,
            name=data.name,
            parameters=parameters,
            tags=sorted(set(deployment.tags) | set(data.tags)),
            state=state,
        ),
        deployment_id=deployment.id,
        work_queue_id=queue_id,
        job_variables=data.job_variables,
        idempotency_key=data.idempotency_key,
        auto_scheduled=auto_scheduled,
    )


# -- the rules a deployment and its runs must follow (checked here, whoever the client) --


def check_parameter_schema(schema: Mapping[str, Any]) -> None:
    """Invalid unless the flow's parameter schema is a JSON Schema: every later check of a
    run's parameters (and the UI's form) reads it, and a malformed one would fail there."""
    if not schema:
        return
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    from skyrun.validation import schema_path

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "parameter_openapi_schema" + schema_path(exc.path)
        raise Invalid(
            f"parameter_openapi_schema is not a valid JSON Schema: {exc.message} (at {where})",
            loc=("body", "parameter_openapi_schema"),
        ) from None


def check_parameters(
    schema: Mapping[str, Any],
    parameters: Mapping[str, Any],
    *,
    need_all: bool,
    who_needs: str = "a run needs",
) -> None:
    """Invalid, naming each parameter that the flow's schema refuses (or that is missing)."""
    if not schema:
        return
    # Imported here, not at the top: jsonschema is ~3 MiB that the embedded mode,
    # running flows with no deployment, should not carry.
    from skyrun.validation import parameter_problems

    problems = parameter_problems(schema, parameters, need_all=need_all, who_needs=who_needs)
    if problems:
        raise Invalid("invalid parameters: " + "; ".join(problems), loc=("body", "parameters"))


async def check_job_variables(
    session: AsyncSession, queue_id: uuid.UUID | None, job_variables: Mapping[str, Any]
) -> None:
    """Invalid, naming each job variable the work pool's base job template does not accept."""
    if not job_variables:
        return
    pool = await _pool_of_queue(session, queue_id)
    if pool is None:
        raise Invalid(
            "job_variables need a work pool: this deployment has none (give work_pool_name), "
            "and a served deployment runs in the serving process"
        )
    # Imported here, not at the top: see check_parameters.
    from skyrun.validation import job_variable_problems

    problems = job_variable_problems(pool.base_job_template, job_variables)
    if problems:
        raise Invalid(
            f"invalid job variables for work pool {pool.name!r}: " + "; ".join(problems),
            loc=("body", "job_variables"),
        )


async def _pool_of_queue(session: AsyncSession, queue_id: uuid.UUID | None) -> WorkPool | None:
    if queue_id is None:
        return None
    pool: WorkPool | None = await session.scalar(
        sa.select(WorkPool)
        .join(WorkQueue, WorkQueue.work_pool_id == WorkPool.id)
        .where(WorkQueue.id == queue_id)
    )
    return pool
