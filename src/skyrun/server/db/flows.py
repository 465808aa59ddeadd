"""Flows: get-or-create by name, read, list."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.core import FlowCreate
from skyrun.server.db import dialect
from skyrun.server.db.models import Flow
from skyrun.server.errors import NotFound


async def get_or_create_flow(session: AsyncSession, data: FlowCreate) -> Flow:
    """The flow named `data.name`, created if it does not exist yet."""
    found = await session.scalar(sa.select(Flow).where(Flow.name == data.name))
    if found is not None:
        return found
    await session.execute(
        dialect.insert_ignoring_conflicts(session, Flow, ["name"]),
        [{"id": uuid.uuid4(), "name": data.name, "tags": data.tags}],
    )
    flow = await session.scalar(sa.select(Flow).where(Flow.name == data.name))
    assert flow is not None
    return flow


async def read_flow(session: AsyncSession, flow_id: uuid.UUID) -> Flow:
    flow = await session.get(Flow, flow_id)
    if flow is None:
        raise NotFound.of("flow", flow_id)
    return flow


async def read_flow_by_name(session: AsyncSession, name: str) -> Flow:
    flow = await session.scalar(sa.select(Flow).where(Flow.name == name))
    if flow is None:
        raise NotFound.of("flow", repr(name))
    return flow


async def list_flows(session: AsyncSession, limit: int, offset: int) -> tuple[list[Flow], int]:
    rows = await session.scalars(sa.select(Flow).order_by(Flow.name).limit(limit).offset(offset))
    count = await session.scalar(sa.select(sa.func.count()).select_from(Flow))
    return list(rows), int(count or 0)
