"""Variables: named JSON values usable in job templates."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.states import utcnow
from skyrun.schemas.variables import Variable as VariableSchema
from skyrun.schemas.variables import VariableSet
from skyrun.server.db.models import Variable
from skyrun.server.errors import NotFound


async def set_variable(session: AsyncSession, name: str, data: VariableSet) -> VariableSchema:
    variable = await session.scalar(sa.select(Variable).where(Variable.name == name))
    if variable is None:
        variable = Variable(id=uuid.uuid4(), name=name, value=data.value, tags=data.tags)
        session.add(variable)
    else:
        variable.value = data.value
        variable.tags = data.tags
        variable.updated = utcnow()
    await session.flush()
    return VariableSchema.model_validate(variable)


async def read_variable(session: AsyncSession, name: str) -> VariableSchema:
    variable = await session.scalar(sa.select(Variable).where(Variable.name == name))
    if variable is None:
        raise NotFound.of("variable", repr(name))
    return VariableSchema.model_validate(variable)


async def list_variables(
    session: AsyncSession, limit: int, offset: int
) -> tuple[list[VariableSchema], int]:
    rows = await session.scalars(
        sa.select(Variable).order_by(Variable.name).limit(limit).offset(offset)
    )
    count = await session.scalar(sa.select(sa.func.count()).select_from(Variable))
    return [VariableSchema.model_validate(r) for r in rows], int(count or 0)


async def delete_variable(session: AsyncSession, name: str) -> None:
    result = await session.execute(sa.delete(Variable).where(Variable.name == name))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound.of("variable", repr(name))
