"""Database engines and sessions, SQLite pragmas, and applying migrations."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pydantic_core
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from skyrun.server.db.migrate import upgrade_to_head
from skyrun.settings import ensure_private_dir


class DatabaseUnavailable(ValueError):
    """The database URL is malformed, or the database cannot be reached or opened.

    The message names the URL (without its password) and what to check; the CLI
    prints it as one line.
    """


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return repr(url)


class Database:
    """An engine plus its session factory, migrated on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.dialect = make_url(url).get_backend_name()
            self.engine = _create_engine(url)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise DatabaseUnavailable(
                f"cannot use the database URL {_shown(url)}: {exc}; set SKYRUN_DATABASE_URL "
                "to e.g. postgresql+asyncpg://user@host/db or sqlite+aiosqlite:///path/skyrun.db"
            ) from None
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    async def migrate(self) -> None:
        """Bring the schema to head; DatabaseUnavailable when the database cannot be opened."""
        try:
            async with self.engine.connect():
                pass
        except (OSError, TimeoutError, sa.exc.DBAPIError) as exc:
            reason = getattr(exc, "orig", None) or exc
            raise DatabaseUnavailable(
                f"cannot open the database {_shown(self.url)}: {reason}; check "
                "SKYRUN_DATABASE_URL and that the database server is running and the "
                "database exists"
            ) from None
        await upgrade_to_head(self.engine)

    def session(self) -> AsyncSession:
        return self.sessionmaker()

    async def dispose(self) -> None:
        await self.engine.dispose()


def _create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            _create_private_file(Path(database))
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, json_serializer=_dumps, json_deserializer=_loads
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        json_serializer=_dumps,
        json_deserializer=_loads,
    )


def _create_private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600), in a 0700 directory.

    SQLite gives its -wal and -shm files the database file's permissions, so they
    are private too. An existing file is left as it is.
    """
    try:
        ensure_private_dir(path.parent, "SKYRUN_HOME (or SKYRUN_DATABASE_URL)")
    except ValueError as exc:
        raise DatabaseUnavailable(str(exc)) from None
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        raise DatabaseUnavailable(
            f"cannot create the SQLite database {path} ({exc.strerror or exc}); set "
            "SKYRUN_HOME (or SKYRUN_DATABASE_URL) to a place you can write"
        ) from None


def _dumps(value: Any) -> str:
    # pydantic-core's encoder is several times faster than json.dumps for the
    # JSON columns written in bulk (task-run state histories).
    return pydantic_core.to_json(value).decode()


def _loads(value: str | bytes) -> Any:
    return pydantic_core.from_json(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is replaced by explicit BEGINs below.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(conn: sa.Connection) -> None:
    # One writer at a time: taking the write lock at BEGIN makes a read-then-write
    # (a claim, a state change) atomic across processes sharing the file.
    conn.exec_driver_sql("BEGIN IMMEDIATE")
