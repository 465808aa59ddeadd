"""Bring a database to the newest revision of the one Alembic history (SQLite or PostgreSQL).

Alembic is imported only when there are migrations to apply. Importing it loads
~10 MiB of modules (every dialect's DDL, autogenerate, Mako) that the embedded
mode, which opens its database in every process that runs a flow, would
otherwise carry for the life of the process. So:

* a database already at head is recognised with one plain SELECT on
  `alembic_version`, the head being read from the scripts' `revision` and
  `down_revision` lines;
* an empty database (no tables at all) is built from the ORM models and stamped
  at head, as Alembic's cookbook recommends for new databases; the migration
  tests prove that this schema equals the migrated one on both databases;
* any other database is migrated by Alembic, as before.

Servers starting at once on one database (replicas on PostgreSQL, processes on
one SQLite file) take turns: building or migrating happens in one transaction
that first takes the migration lock (a PostgreSQL advisory lock; SQLite's write
lock), then looks at the schema again, so the second finds the first's work done.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from skyrun.server.db import dialect
from skyrun.server.db.models import Base

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"

# Alembic's own version table, as `alembic.runtime.migration` defines it.
_VERSION_TABLE = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
_REVISION_LINE = re.compile(r"^revision\b[^=\n]*=\s*(.+)$", re.MULTILINE)
_DOWN_REVISION_LINE = re.compile(r"^down_revision\b[^=\n]*=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"""["']([^"']+)["']""")


@functools.cache
def head_revision() -> str | None:
    """The newest revision of the history, or None when the scripts do not name exactly one.

    Read from the scripts' `revision = "..."` and `down_revision = ...` lines
    without importing Alembic; a test checks that Alembic finds the same head.
    None (several heads, or a script this cannot read) sends every database
    through Alembic, which reports the problem.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in VERSIONS_DIR.glob("*.py"):
        text = script.read_text(encoding="utf-8")
        revision = _REVISION_LINE.search(text)
        down_revision = _DOWN_REVISION_LINE.search(text)
        names = _QUOTED.findall(revision.group(1)) if revision else []
        if len(names) != 1 or down_revision is None:
            return None
        revisions.add(names[0])
        parents.update(_QUOTED.findall(down_revision.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _tables_and_revision(connection: sa.Connection) -> tuple[list[str], str | None]:
    tables = sa.inspect(connection).get_table_names()
    if _VERSION_TABLE.name not in tables:
        return tables, None
    versions = connection.execute(sa.select(_VERSION_TABLE.c.version_num)).scalars().all()
    return tables, versions[0] if len(versions) == 1 else None


def _create_at_head(connection: sa.Connection, head: str) -> None:
    """Build an empty database from the models and stamp it at head."""
    Base.metadata.create_all(connection)
    _VERSION_TABLE.create(connection)
    connection.execute(_VERSION_TABLE.insert().values(version_num=head))


def _bring_to_head(connection: sa.Connection, head: str | None) -> None:
    """Under the migration lock: look again, then build, migrate, or leave it as it is."""
    dialect.lock_migrations(connection)
    tables, current = _tables_and_revision(connection)
    if head is not None and current == head:
        return  # another server got there first
    if head is not None and not tables:
        _create_at_head(connection, head)
        return
    _upgrade(connection)


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; cheap when it already is."""
    head = head_revision()
    async with engine.connect() as conn:
        _, current = await conn.run_sync(_tables_and_revision)
    if head is not None and current == head:
        return
    async with engine.begin() as conn:
        await conn.run_sync(_bring_to_head, head)


async def run_migrations(engine: AsyncEngine) -> None:
    """Apply the Alembic history's pending migrations (all of them to an empty database)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic Config for the history (with the connection its env.py runs on)."""
    # Imported here, not at the top: see the module docstring.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: sa.Connection) -> None:
    # Imported here, not at the top: see the module docstring.
    from alembic import command

    command.upgrade(alembic_config(connection), "head")
