"""Shared fixtures: settings, a database per test (SQLite and PostgreSQL), the API, the SDK home.

Every test that asks for `database_url` gets a migrated database of its own,
copied from a template migrated once per session (per xdist worker): a SQLite
file copy, or `CREATE DATABASE ... TEMPLATE` on PostgreSQL. When no PostgreSQL
answers, its tests are skipped locally and fail when CI is set: CI must run them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from skyrun.client import client as client_module
from skyrun.sdk import flow_engine
from skyrun.sdk import recorder as recorder_module
from skyrun.server.app import create_app
from skyrun.server.db.engine import Database
from skyrun.settings import Settings, setting_names

POSTGRES_ADMIN_URL = os.environ.get(
    "SKYRUN_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


# -- settings ---------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings rooted in tmp_path, untouched by the developer's SKYRUN_* variables or profile."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SKYRUN_HOME", str(tmp_path))
    return Settings(home=tmp_path)


# -- PostgreSQL -------------------------------------------------------------------


def _database_url(name: str) -> str:
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def _admin(*statements: str) -> None:
    engine = create_async_engine(
        POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"timeout": 10}
    )
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


async def _create_template(name: str) -> None:
    await _admin(f'CREATE DATABASE "{name}"')
    # _migrate disposes the engine: a template must have no open connections when copied.
    await _migrate(_database_url(name))


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    """Whether PostgreSQL answers; skip (locally) or fail (in CI) when it does not."""
    try:
        asyncio.run(_admin("SELECT 1"))
    except Exception as exc:
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc!r}"
        if in_ci():
            pytest.fail(message + " (CI is set, so the PostgreSQL tests must run)")
        pytest.skip(message)
    return True


@pytest.fixture(scope="session")
def postgres_template(postgres_available: bool) -> Iterator[str]:
    """A database migrated to head once per session, copied for each test."""
    name = f"skyrun_tmpl_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_template(name))
    yield name
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _postgres_database(template: str | None) -> Iterator[str]:
    name = f"skyrun_test_{uuid.uuid4().hex[:12]}"
    source = f' TEMPLATE "{template}"' if template else ""
    asyncio.run(_admin(f'CREATE DATABASE "{name}"{source}'))
    try:
        yield _database_url(name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- SQLite -----------------------------------------------------------------------


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await database.migrate()
    finally:
        # Closing the last connection checkpoints the WAL into the file, so it copies whole.
        await database.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session, copied for each test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(_migrate(sqlite_url(path)))
    return path


# -- a database per test ----------------------------------------------------------


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of this test's own: a SQLite file or a PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield sqlite_url(path)
        return
    yield from _postgres_database(request.getfixturevalue("postgres_template"))


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all (for migration tests)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "empty.db")
        return
    request.getfixturevalue("postgres_available")
    yield from _postgres_database(None)


@pytest.fixture
def api_settings(settings: Settings, database_url: str) -> Settings:
    """The test's settings, pointed at the test's database."""
    return settings.model_copy(update={"database_url": database_url})


@asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for a freshly built app on `settings` (its database migrated first).

    Each call builds a new app, so per-app state (the API-key cache) starts empty.
    """
    app = create_app(settings, run_services=False)
    database: Database = app.state.database
    await database.migrate()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            yield client
    finally:
        await database.dispose()


@pytest.fixture
def api_for() -> Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """`async with api_for(settings) as client:` an API on a new app (e.g. with auth on)."""
    return api_client


@pytest.fixture
async def api(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API of an app on the test's database, without background services."""
    async with api_client(api_settings) as client:
        yield client


# -- the SDK in embedded mode -----------------------------------------------------


def _close_sdk_caches() -> None:
    # Recorders flush through their client, so they close first.
    recorder_module.close_recorders()
    flow_engine._flow_ids.clear()
    clients = list(client_module._clients.values())
    client_module._clients.clear()
    for client in clients:
        client.close()


@pytest.fixture
def sdk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """SKYRUN_HOME=tmp_path with no API URL: flows record to a fresh embedded SQLite database."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SKYRUN_HOME", str(tmp_path))
    _close_sdk_caches()
    yield tmp_path
    _close_sdk_caches()
