"""create_app(settings) -> the FastAPI application: /api, its docs, and the web UI at /."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

from skyrun._version import __version__
from skyrun.safe_text import SafeTextMiddleware
from skyrun.server.api import artifacts, flow_runs, flows, task_runs, variables
from skyrun.server.api.deps import EXTRA_SCHEMAS, ApiRoute
from skyrun.server.auth import OPEN_PATHS, ApiKeyAuth
from skyrun.server.body_limit import BodyLimit
from skyrun.server.db.engine import Database
from skyrun.server.encryption import SecretBox, require_key_for_server
from skyrun.server.http_errors import add_error_handlers, document_errors
from skyrun.server.services.loops import Service, start_services, stop_services
from skyrun.server.sessions import SessionCookies
from skyrun.settings import Settings

ROUTERS = (flows.router, flow_runs.router, task_runs.router, artifacts.router, variables.router)
# The work routers (pools, queues, workers, claims, deployments), by the paths they
# serve. An app built with `work_routes_on_demand` imports them on the first
# request for one of those paths: the embedded backend of a process that only
# runs flows never pays for their modules and route models (~1.2 MiB).
# Blocks too: their routes bring the block types and, on use, `cryptography`.
WORK_ROUTERS = {
    "/api/work_pools": "work_pools",
    "/api/deployments": "deployments",
    "/api/blocks": "blocks",
    "/api/block_types": "blocks",
}


def server_services(settings: Settings) -> list[Service]:
    # Imported here, not at the top: the scheduler brings croniter and dateutil,
    # housekeeping the work-pool queries, and an embedded process that only runs
    # flows runs no services.
    from skyrun.server.services.housekeeping import housekeeping_pass
    from skyrun.server.services.scheduler import scheduler_pass

    return [
        Service("scheduler", settings.scheduler_interval, scheduler_pass(settings)),
        Service("housekeeping", settings.housekeeping_interval, housekeeping_pass(settings)),
    ]


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    run_services: bool = True,
    work_routes_on_demand: bool = False,
    require_api_keys: bool | None = None,
    ui: bool | None = None,
) -> FastAPI:
    """Build the application.

    Args:
        settings: where the database is, whether auth is on, service intervals.
        database: an existing Database to use (the embedded client shares one).
        run_services: start the background services (scheduler, late runs, ...)
            with the app; the embedded mode runs none.
        work_routes_on_demand: add the work routers on the first request for
            their paths instead of now (the embedded mode); the API is the same.
        require_api_keys: check API keys and their scopes; default
            `settings.server_auth_enabled`. The embedded mode checks none: a
            process that opens the database itself can do anything anyway.
        ui: serve the web UI at `/`; default: unless the work routes are on demand
            (the embedded mode has no browser to serve).
    """
    db = database or Database.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before anything else: a PostgreSQL server without the shared key must not serve.
        require_key_for_server(settings)
        await db.migrate()
        if run_services:
            # On PostgreSQL, listen from the start: the first waiting claim need not connect.
            await db.listening()
        tasks = start_services(server_services(settings), db) if run_services else []
        yield
        await stop_services(tasks)
        if database is None:
            await db.dispose()

    app = FastAPI(
        title="skyrun",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.database = db
    app.state.settings = settings
    # Woken by every transaction that makes work claimable (server/db/work_events.py).
    app.state.notifier = db.notifier
    # Block secrets' cipher; its key is found (or, on SQLite, generated) on first use.
    app.state.secret_box = SecretBox(settings)

    api = APIRouter(prefix="/api", route_class=ApiRoute)

    @api.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/version", tags=["health"])
    async def version() -> dict[str, str]:
        return {"version": __version__}

    for router in ROUTERS:
        api.include_router(router)
    app.include_router(api)
    work_routes = _WorkRoutes(app)
    if work_routes_on_demand:
        app.add_middleware(_IncludeWorkRoutesOnDemand, work_routes=work_routes)
    else:
        work_routes.include()

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            work_routes.include()
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, extra in EXTRA_SCHEMAS.items():
                components.setdefault(name, extra)
            document_errors(schema, open_paths=OPEN_PATHS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    if settings.server_auth_enabled if require_api_keys is None else require_api_keys:
        app.state.api_key_auth = ApiKeyAuth(db, SessionCookies(app.state.secret_box))
        app.middleware("http")(app.state.api_key_auth)
    if not work_routes_on_demand if ui is None else ui:
        # Imported here: Jinja2 and the pages are for a server, not a process running flows.
        from skyrun.server.ui import include_ui

        include_ui(app)
    # No route, nor the auth check, sees unstorable text (NUL, lone surrogates).
    app.add_middleware(SafeTextMiddleware)
    # Added last, so it is the outermost: a body is counted before anything reads it.
    app.add_middleware(BodyLimit, max_bytes=settings.server_max_body_bytes)
    add_error_handlers(app)
    return app


class _WorkRoutes:
    """Adds the work routers to an app, once."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.included = False

    def include(self) -> None:
        if self.included:
            return
        self.included = True
        for module in dict.fromkeys(WORK_ROUTERS.values()):
            router = importlib.import_module(f"skyrun.server.api.{module}").router
            self.app.include_router(router, prefix="/api")


class _IncludeWorkRoutesOnDemand:
    """ASGI middleware: before routing a request for a work path, make sure its routes exist."""

    def __init__(self, app: ASGIApp, work_routes: _WorkRoutes) -> None:
        self.app = app
        self.work_routes = work_routes
        self.prefixes = tuple(WORK_ROUTERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.work_routes.included and scope.get("path", "").startswith(self.prefixes):
            self.work_routes.include()
        await self.app(scope, receive, send)
