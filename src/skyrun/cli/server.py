"""`skyrun server start`: serve the API (and UI) with uvicorn."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
from typing import TYPE_CHECKING

import typer

from skyrun.cli.errors import CLIError
from skyrun.cli.output import warn

if TYPE_CHECKING:
    from skyrun.settings import Settings

app = typer.Typer(help="Run the skyrun server.", no_args_is_help=True)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def freeze_startup_objects() -> None:
    """Keep what start-up made (modules, classes, the app) out of every garbage collection.

    They live as long as the process, yet each full collection walks them all; a
    page that builds a thousand rows sets off one every few requests, which added
    tens of ms to those answers (bench/ui_pages.py's slowest figures). Only here, in
    the dedicated server process: an embedded app shares a flow's process, whose
    objects are not ours to freeze.
    """
    gc.collect()
    gc.freeze()


def check_exposure(host: str, auth_enabled: bool, insecure: bool) -> None:
    """Refuse to serve beyond loopback without auth, unless explicitly told it is insecure."""
    if is_loopback(host) or auth_enabled or insecure:
        return
    raise CLIError(
        f"refusing to listen on {host} without authentication: anyone who can reach it could "
        "run code through skyrun. Enable auth (--auth, or SKYRUN_SERVER_AUTH_ENABLED=true, then "
        "'skyrun api-key create NAME'), or pass --insecure-no-auth if you really mean it."
    )


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _log_level(value: str) -> str:
    if value.lower() not in LOG_LEVELS:
        raise CLIError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
    return value.lower()


def exposure_warning(host: str, auth_enabled: bool) -> str | None:
    """What to tell the operator when the server listens beyond loopback without auth."""
    if is_loopback(host) or auth_enabled:
        return None
    return (
        f"listening on {host} WITHOUT authentication (--insecure-no-auth): anyone who can "
        "reach this address can run code through skyrun. Use --auth and API keys unless "
        "a network you control keeps everyone else out."
    )


def check_database(settings: Settings) -> None:
    """Open (and migrate) the database now, so a bad one is one line, not a traceback
    from inside the server's start-up."""
    # Imported here: the server and SQLAlchemy load only for commands that need them.
    from skyrun.server.db.engine import Database, DatabaseUnavailable

    async def migrate() -> None:
        database = Database(settings.resolved_database_url)
        try:
            await database.migrate()
        finally:
            await database.dispose()

    try:
        asyncio.run(migrate())
    except DatabaseUnavailable as exc:
        raise CLIError(str(exc)) from None


def check_encryption_key(settings: Settings) -> None:
    """Refuse a PostgreSQL server without SKYRUN_ENCRYPTION_KEY, in one line."""
    from skyrun.server.encryption import EncryptionKeyMissing, require_key_for_server

    try:
        require_key_for_server(settings)
    except EncryptionKeyMissing as exc:
        raise CLIError(f"refusing to start: {exc}") from None


@app.command()
def start(
    host: str = typer.Option(None, help="Address to listen on (default 127.0.0.1)."),
    port: int = typer.Option(None, min=1, max=65535, help="Port to listen on (default 4200)."),
    auth: bool = typer.Option(None, "--auth/--no-auth", help="Require API keys."),
    insecure_no_auth: bool = typer.Option(
        False, "--insecure-no-auth", help="Allow listening beyond loopback without auth."
    ),
    services: bool = typer.Option(
        True, "--services/--no-services", help="Run the scheduler and other services."
    ),
    log_level: str = typer.Option(
        "warning",
        callback=_log_level,
        metavar="[" + "|".join(LOG_LEVELS) + "]",
        help="uvicorn's log level.",
    ),
) -> None:
    """Start the server: the web UI at /, the REST API at /api (docs at /api/docs)."""
    import uvicorn

    from skyrun.server.app import create_app
    from skyrun.settings import get_settings

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["server_host"] = host
    if port is not None:
        overrides["server_port"] = port
    if auth is not None:
        overrides["server_auth_enabled"] = auth
    settings = get_settings().model_copy(update=overrides)
    check_exposure(
        settings.server_host,
        settings.server_auth_enabled,
        insecure_no_auth or settings.server_allow_insecure,
    )
    warning = exposure_warning(settings.server_host, settings.server_auth_enabled)
    if warning:
        warn(warning)
    check_encryption_key(settings)
    check_database(settings)
    application = create_app(settings, run_services=services)
    url = f"http://{settings.server_host}:{settings.server_port}"
    typer.echo(f"skyrun server on {url} (UI {url}/, API {url}/api, docs {url}/api/docs)")
    typer.echo(f"database: {settings.resolved_database_url.split('@')[-1]}")
    if settings.server_auth_enabled:
        typer.echo(
            "auth: API key required (the first admin key: 'skyrun api-key create NAME "
            "--scope admin' on this machine, without SKYRUN_API_URL)"
        )
    freeze_startup_objects()
    uvicorn.run(
        application,
        host=settings.server_host,
        port=settings.server_port,
        log_level=log_level,
        # Open UI pages hold event streams: on SIGTERM, close them after 3 s, not never.
        timeout_graceful_shutdown=3,
    )
