"""`skyrun worker start`: poll a work pool and run its flow runs."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import uuid
from types import FrameType
from typing import Annotated

import typer

from skyrun.cli.errors import CLIError

app = typer.Typer(help="Run workers that execute a work pool's flow runs.", no_args_is_help=True)


def _default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _confirm(question: str) -> bool:
    return typer.confirm(question, default=False)


def _configure_worker_logging(level: str) -> None:
    logger = logging.getLogger("skyrun.worker")
    logger.setLevel(level.upper())
    logger.propagate = False
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s | %(levelname)-7s | worker - %(message)s", "%H:%M:%S")
        )
        logger.addHandler(handler)


@app.command()
def start(
    # From the environment too, so an image's fixed command (the worker image's CMD)
    # is pointed at a pool by the platform's variables alone.
    pool: Annotated[
        str,
        typer.Option("--pool", "-p", envvar="SKYRUN_WORKER_POOL", help="The work pool to poll."),
    ],
    worker_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            "-t",
            envvar="SKYRUN_WORKER_TYPE",
            help="Worker type (default: the pool's type, or 'process').",
        ),
    ] = None,
    work_queue: Annotated[
        list[str] | None,
        typer.Option("--work-queue", "-q", help="Only this queue (repeatable; default all)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The worker's name (default: unique).")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many runs at once (default: no limit).")
    ] = None,
    run_once: Annotated[
        bool, typer.Option("--run-once", help="Claim once, run what was claimed, exit.")
    ] = False,
    with_healthcheck: Annotated[
        bool,
        typer.Option("--with-healthcheck", help="Serve GET / and /health on $PORT (default 8080)."),
    ] = False,
    install_policy: Annotated[
        str,
        typer.Option(
            "--install-policy",
            help="Install the worker type's extra: always, if-not-present, never, prompt.",
        ),
    ] = "prompt",
) -> None:
    """Start a worker: claim the pool's due runs and run them on its infrastructure."""
    # Deferred imports: keep `skyrun --help` and other commands fast.
    from skyrun.client.client import get_client
    from skyrun.client.errors import ObjectNotFound
    from skyrun.jobs.types import UnknownWorkerType
    from skyrun.settings import get_settings
    from skyrun.workers.health import HealthCheckError, healthcheck_port
    from skyrun.workers.install import InstallPolicy, WorkerTypeUnavailable, load_worker_type
    from skyrun.workers.loop import (
        WorkerConfigError,
        WorkerError,
        WorkerLoop,
        WorkerOptions,
        check_work_queues,
        ensure_work_pool,
    )

    try:
        policy = InstallPolicy(install_policy.lower())
    except ValueError:
        choices = ", ".join(p.value for p in InstallPolicy)
        raise CLIError(f"--install-policy must be one of {choices}, not {install_policy!r}")
    # Checked first: a bad $PORT is reported before anything is installed or created.
    port = None
    if with_healthcheck:
        try:
            port = healthcheck_port()
        except HealthCheckError as exc:
            raise CLIError(str(exc))
    settings = get_settings()
    _configure_worker_logging(settings.logging_level)
    client = get_client(settings)
    if worker_type is None:
        try:
            worker_type = client.read_work_pool(pool).type
        except ObjectNotFound:
            worker_type = "process"
    try:
        worker_class = load_worker_type(
            worker_type, policy, interactive=sys.stdin.isatty(), confirm=_confirm
        )
    except (UnknownWorkerType, WorkerTypeUnavailable) as exc:
        raise CLIError(str(exc))
    try:
        ensure_work_pool(client, pool, worker_type, worker_class.default_job_template())
        check_work_queues(client, pool, list(work_queue or []))
    except WorkerConfigError as exc:
        raise CLIError(str(exc))
    options = WorkerOptions(
        pool_name=pool,
        worker_name=name or _default_name(),
        queues=list(work_queue or []),
        limit=limit,
        run_once=run_once,
        healthcheck_port=port,
    )
    loop = WorkerLoop(worker_class(client), client, settings, options)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if loop.stopping.is_set():
            # A second signal: stop now, without waiting for runs to be reported.
            os._exit(128 + signum)
        logging.getLogger("skyrun.worker").info(
            "Stopping (%s); again to stop at once", signal.Signals(signum).name
        )
        loop.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        loop.run()
    except (WorkerError, HealthCheckError) as exc:
        raise CLIError(str(exc))
