"""Fixtures of the UI's integration tests: an app on the test's database, and a client of it
(modules that need a `client` of another kind define their own, which wins)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from skyrun.server.app import create_app
from skyrun.settings import Settings


@pytest.fixture
async def app(api_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(api_settings, run_services=False)
    await application.state.database.migrate()
    yield application
    await application.state.database.dispose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        yield http
