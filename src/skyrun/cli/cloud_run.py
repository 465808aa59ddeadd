"""`skyrun cloud-run emulator`: a local Cloud Run Admin API v2 to point a pool at."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

import typer

from skyrun.cli.errors import CLIError
from skyrun.cli.server import is_loopback

app = typer.Typer(help="Google Cloud Run tools.", no_args_is_help=True)

DEFAULT_PORT = 8086


def _secrets(values: list[str]) -> dict[str, str]:
    secrets: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise CLIError(f"--secret takes NAME=VALUE, not {value!r}")
        secrets[name] = text
    return secrets


@app.command()
def emulator(
    host: str = typer.Option("127.0.0.1", "--host", help="Where to listen."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Where to listen (0: any free port)."),
    service_account_key: Path | None = typer.Option(
        None,
        "--service-account-key",
        help="A service-account key file: serve its token_uri and refuse calls not signed by it.",
    ),
    execute: str = typer.Option(
        "process",
        "--execute",
        help="process: run each task's command here; image: run it in the job's image (buildah).",
    ),
    state_dir: Path | None = typer.Option(
        None,
        "--state-dir",
        help="Keep jobs, executions and task logs here, across restarts (default: a temporary "
        "directory, in memory only).",
    ),
    region: list[str] = typer.Option(
        [], "--region", help="Serve only these regions (repeatable; default: Cloud Run's)."
    ),
    any_region: bool = typer.Option(False, "--any-region", help="Serve any region name."),
    job_limit: int = typer.Option(1000, "--job-limit", help="Jobs per project and region."),
    secret: list[str] = typer.Option(
        [], "--secret", help="NAME=VALUE: a Secret Manager secret for env valueSource references."
    ),
    insecure: bool = typer.Option(
        False,
        "--insecure-no-auth",
        help="Allow listening beyond loopback without --service-account-key.",
    ),
) -> None:
    """Serve the Cloud Run Admin API v2 (jobs, executions, operations) on this machine."""
    # Imported here: the emulator needs the gcp extra, and other commands must start fast.
    try:
        import uvicorn

        from skyrun.integrations.gcp.emulator.app import create_emulator_app
        from skyrun.integrations.gcp.emulator.config import CLOUD_RUN_REGIONS, EmulatorConfig
    except ImportError as exc:
        raise CLIError(
            f"the Cloud Run emulator needs the gcp extra: pip install 'skyrun[gcp]' ({exc})"
        ) from None
    if execute not in ("process", "image"):
        raise CLIError(f"--execute is process or image, not {execute!r}")
    if service_account_key is not None and not service_account_key.is_file():
        raise CLIError(f"--service-account-key {service_account_key}: no such file")
    if not is_loopback(host) and service_account_key is None and not insecure:
        raise CLIError(
            f"refusing to listen on {host} without --service-account-key: the emulator runs "
            "the commands of the jobs it is sent, so anyone who can reach it could run code "
            "on this machine. Give it a key, or pass --insecure-no-auth if you really mean it."
        )
    if execute == "image" and shutil.which("buildah") is None:
        raise CLIError("--execute image runs tasks with buildah: apt-get install buildah")
    regions = None if any_region else frozenset(region) if region else CLOUD_RUN_REGIONS
    work_dir = state_dir or Path(tempfile.mkdtemp(prefix="skyrun-cloud-run-emulator-"))
    try:
        config = EmulatorConfig(
            execute=execute,  # type: ignore[arg-type]
            work_dir=work_dir,
            persist=state_dir is not None,
            service_account_key=service_account_key,
            regions=regions,
            job_limit=job_limit,
            secrets=_secrets(secret),
        )
        application = create_emulator_app(config)
    except (ValueError, KeyError, OSError) as exc:
        raise CLIError(f"the emulator cannot start: {exc}") from None
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            # An operations.wait long-poll must not hold up stopping (and killing tasks).
            timeout_graceful_shutdown=3,
            # Google's front ends keep an idle connection for minutes; uvicorn's 5 s
            # default would reset clients that poll every 5 s (Prefect's worker) mid-request.
            timeout_keep_alive=120,
        )
    )
    asyncio.run(_serve(server, host))


async def _serve(server: Any, host: str) -> None:
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    if server.started:
        port = server.servers[0].sockets[0].getsockname()[1]
        typer.echo(f"Cloud Run emulator listening on http://{host}:{port}")
    await serving
    if not server.started:
        raise CLIError("the emulator could not start listening (is the port in use?)")
