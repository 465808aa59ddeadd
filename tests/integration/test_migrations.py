"""The one Alembic history builds exactly the schema the ORM models describe, on both databases.

`upgrade_to_head` builds an empty database from the models (stamped at head)
instead of replaying the history, so these tests also prove that both ways give
the same schema, and that a database at head is recognised without Alembic.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from skyrun.server.db.engine import Database
from skyrun.server.db.migrate import (
    alembic_config,
    head_revision,
    run_migrations,
    upgrade_to_head,
)
from skyrun.server.db.models import Base

SUBPROCESS_TIMEOUT = 120  # a guard against hangs, not a timing assertion


def _schema_differences(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def _current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _table_names(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def _reflected_schema(connection: sa.Connection) -> dict[str, Any]:
    """Everything the database itself reports about each table, in a comparable form."""
    inspector = sa.inspect(connection)

    def by_name(items: list[Any]) -> list[Any]:
        return sorted(items, key=lambda item: str(item.get("name")))

    schema: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        columns = [
            {
                "name": c["name"],
                "type": str(c["type"]),
                "nullable": c["nullable"],
                "default": c.get("default"),
            }
            for c in inspector.get_columns(table)
        ]
        schema[table] = {
            "columns": columns,
            "primary_key": inspector.get_pk_constraint(table),
            "foreign_keys": by_name(inspector.get_foreign_keys(table)),
            "indexes": by_name(inspector.get_indexes(table)),
            "unique": by_name(inspector.get_unique_constraints(table)),
            "checks": by_name(inspector.get_check_constraints(table)),
        }
    return json.loads(json.dumps(schema, default=str))


async def test_empty_database_has_no_tables(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        async with database.engine.connect() as conn:
            assert await conn.run_sync(_table_names) == set()
            assert await conn.run_sync(_current_revision) is None
    finally:
        await database.dispose()


def test_head_revision_is_alembics_head() -> None:
    """The head read from the scripts without Alembic is the one Alembic finds."""
    assert head_revision() is not None
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_migrated_schema_equals_models(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        await run_migrations(database.engine)
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


async def test_new_database_built_from_models_equals_migrated_one(
    empty_database_url: str,
) -> None:
    """An empty database is built from the models and stamped: the same schema as migrating it."""
    database = Database(empty_database_url)
    try:
        await upgrade_to_head(database.engine)
        async with database.engine.connect() as conn:
            differences = await conn.run_sync(_schema_differences)
            built = await conn.run_sync(_reflected_schema)
            built_revision = await conn.run_sync(_current_revision)
        async with database.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.execute(sa.text("DROP TABLE alembic_version"))
        await run_migrations(database.engine)
        async with database.engine.connect() as conn:
            migrated = await conn.run_sync(_reflected_schema)
    finally:
        await database.dispose()
    assert differences == []
    assert built_revision == head_revision()
    assert built.keys() == migrated.keys()
    for table in built:
        assert built[table] == migrated[table], table


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


async def test_a_database_not_at_head_goes_through_alembic(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        await run_migrations(database.engine)
        async with database.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE alembic_version SET version_num = 'not-ours'"))
        # Alembic refuses a revision its history does not hold: proof that it ran.
        with pytest.raises(CommandError, match="not-ours"):
            await database.migrate()
    finally:
        await database.dispose()


def test_opening_a_database_at_head_does_not_import_alembic(database_url: str) -> None:
    """Alembic is loaded only to migrate: it is ~10 MiB every embedded process would carry."""
    code = (
        "import asyncio, json, sys\n"
        "from skyrun.server.db.engine import Database\n"
        "async def main(url):\n"
        "    database = Database(url)\n"
        "    await database.migrate()\n"
        "    await database.dispose()\n"
        "asyncio.run(main(sys.argv[1]))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, database_url],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=True,
    )
    assert json.loads(result.stdout) == []


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
