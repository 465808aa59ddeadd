"""Database engines and sessions, SQLite pragmas, and applying migrations."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from skyrun.server.db.work_events import session_class
from skyrun.server.notify import RunNotifier
from skyrun.settings import ensure_private_dir

if TYPE_CHECKING:
    from skyrun.server.db.listen import WorkListener
    from skyrun.settings import Settings


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
    """An engine plus its session factory, migrated on first use.

    `notifier` is woken when a transaction of this database's sessions makes
    work claimable (work_events.py); on PostgreSQL, `listening()` also wakes it
    for the other replicas' transactions.
    """

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 20) -> None:
        self.url = url
        try:
            self.dialect = make_url(url).get_backend_name()
            self.engine = _create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise DatabaseUnavailable(
                f"cannot use the database URL {_shown(url)}: {exc}; set SKYRUN_DATABASE_URL "
                "to e.g. postgresql+asyncpg://user@host/db or sqlite+aiosqlite:///path/skyrun.db"
            ) from None
        self.notifier = RunNotifier()
        self.sessionmaker = async_sessionmaker(
            self.engine,
            expire_on_commit=False,
            sync_session_class=session_class(self.notifier, postgres=self.dialect == "postgresql"),
        )
        # Sessions that only read (UI pages, live-event probes): on SQLite they begin a
        # deferred transaction, so they never take the single writer's lock.
        self.read_sessionmaker = async_sessionmaker(
            self.engine.execution_options(skyrun_read_only=True), expire_on_commit=False
        )
        self._listener: WorkListener | None = None

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

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The database the settings name, with their connection-pool sizes."""
        return cls(
            settings.resolved_database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )

    def session(self) -> AsyncSession:
        return self.sessionmaker()

    def read_session(self) -> AsyncSession:
        """A session for reading only: on SQLite it waits for no writer and blocks none
        (WAL readers see the last commit); on PostgreSQL it is an ordinary session."""
        return self.read_sessionmaker()

    async def listening(self) -> bool:
        """Whether other processes' changes wake `notifier` (PostgreSQL, while connected).

        The first call on PostgreSQL starts the LISTEN connection; SQLite has none.
        """
        if self.dialect != "postgresql":
            return False
        if self._listener is None:
            # Imported here, not at the top: only PostgreSQL listens (it loads the backoff).
            from skyrun.server.db.listen import WorkListener

            self._listener = WorkListener(self.url, self.notifier)
        return self._listener.connected or await self._listener.start()

    async def dispose(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
        await self.engine.dispose()


def _create_engine(url: str, *, pool_size: int, max_overflow: int) -> AsyncEngine:
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
        pool_size=pool_size,
        max_overflow=max_overflow,
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
    # (a claim, a state change) atomic across processes sharing the file. A read-only
    # session's deferred BEGIN takes no lock (a write in it would fail, not wait).
    if conn.get_execution_options().get("skyrun_read_only"):
        conn.exec_driver_sql("BEGIN")
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE")
