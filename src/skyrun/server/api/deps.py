"""What every route needs: the database, and a transaction that commits on success."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.server.db.engine import Database


def database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


@asynccontextmanager
async def transaction(request: Request) -> AsyncIterator[AsyncSession]:
    """A session in one transaction: committed when the block ends, rolled back on error."""
    async with database(request).session() as session, session.begin():
        yield session
