"""What the UI's blocks and variables pages read: one keyset page per query, secrets masked."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.blocks import BlockDocument
from skyrun.schemas.variables import Variable as VariableSchema
from skyrun.server.db.blocks import masked_document
from skyrun.server.db.models import BlockRecord, Variable
from skyrun.server.db.ui_keyset import Cursor, before, page_of


async def block_page(
    session: AsyncSession, block_type: str | None, cursor: Cursor | None, limit: int
) -> tuple[list[BlockDocument], Cursor | None]:
    """Blocks newest first (of one type, if given), their secrets masked; the next cursor."""
    where = before(BlockRecord.created, BlockRecord.id, cursor)
    if block_type is not None:
        where.append(BlockRecord.block_type == block_type)
    rows = list(
        await session.scalars(
            sa.select(BlockRecord)
            .where(*where)
            .order_by(BlockRecord.created.desc(), BlockRecord.id.desc())
            .limit(limit + 1)
        )
    )
    records, next_cursor = page_of(rows, limit)
    return [masked_document(record) for record in records], next_cursor


async def variable_page(
    session: AsyncSession, cursor: Cursor | None, limit: int
) -> tuple[list[VariableSchema], Cursor | None]:
    """Variables newest first; the next page's cursor."""
    rows = list(
        await session.scalars(
            sa.select(Variable)
            .where(*before(Variable.created, Variable.id, cursor))
            .order_by(Variable.created.desc(), Variable.id.desc())
            .limit(limit + 1)
        )
    )
    variables, next_cursor = page_of(rows, limit)
    return [VariableSchema.model_validate(row) for row in variables], next_cursor


async def blocks_fingerprint(session: AsyncSession) -> Any:
    """What changes when a block is added, changed or removed (a live page's probe)."""
    row = (
        await session.execute(sa.select(sa.func.count(), sa.func.max(BlockRecord.updated)))
    ).one()
    return [row[0], str(row[1])]


async def variables_fingerprint(session: AsyncSession) -> Any:
    """What changes when a variable is added, changed or removed (a live page's probe)."""
    row = (await session.execute(sa.select(sa.func.count(), sa.func.max(Variable.updated)))).one()
    return [row[0], str(row[1])]
