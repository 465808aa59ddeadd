"""The one Alembic history builds exactly the schema the ORM models describe, on both databases."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from skyrun.server.db.engine import Database
from skyrun.server.db.migrate import head_revision, upgrade_to_head
from skyrun.server.db.models import Base


def _schema_differences(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def _current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _table_names(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


async def test_empty_database_has_no_tables(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        async with database.engine.connect() as conn:
            assert await conn.run_sync(_table_names) == set()
            assert await conn.run_sync(_current_revision) is None
    finally:
        await database.dispose()


async def test_migrated_schema_equals_models(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        await upgrade_to_head(database.engine)
        async with database.engine.connect() as conn:
            differences = await conn.run_sync(_schema_differences)
            tables = await conn.run_sync(_table_names)
            revision = await conn.run_sync(_current_revision)
    finally:
        await database.dispose()
    assert differences == []
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert revision is not None
    assert revision == head_revision()


async def test_upgrade_twice_is_a_no_op(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        await database.migrate()
        await database.migrate()
        async with database.engine.connect() as conn:
            differences = await conn.run_sync(_schema_differences)
            revision = await conn.run_sync(_current_revision)
    finally:
        await database.dispose()
    assert differences == []
    assert revision == head_revision()


async def test_test_databases_start_migrated_and_empty(database_url: str) -> None:
    """The per-test databases (PostgreSQL copies of a template) are at head with no rows."""
    database = Database(database_url)
    try:
        async with database.engine.connect() as conn:
            if database.dialect == "postgresql":
                assert await conn.run_sync(_current_revision) == head_revision()
                assert await conn.run_sync(_schema_differences) == []
            for table in Base.metadata.sorted_tables:
                if await conn.run_sync(lambda c, t=table: sa.inspect(c).has_table(t.name)):
                    count = await conn.scalar(sa.select(sa.func.count()).select_from(table))
                    assert count == 0, table.name
    finally:
        await database.dispose()
