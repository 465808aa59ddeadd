"""The base worker loop: heartbeats, long-poll claiming, one thread per run, cancellation.

Threads:
  * the claim loop: waits for a free slot, long-polls the pool for due runs and
    starts a thread per claimed run (`RunLauncher.handle`);
  * heartbeats, every `settings.worker_heartbeat_interval` seconds;
  * the cancel watcher: every second, while this worker has runs, it looks for
    them in CANCELLING, kills their infrastructure and marks them CANCELLED;
  * optionally the health check server (see `health.py`).

Stopping (SIGINT/SIGTERM, or `stop()`): claiming stops; claimed runs that were
not launched yet go back to SCHEDULED; running infrastructure is killed and
its runs marked CRASHED when the worker type says so (`kill_on_shutdown`:
local processes), and is otherwise left to finish and report on its own.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from skyrun.client.base import CALLER_RETRIES
from skyrun.client.client import SkyrunClient
from skyrun.client.errors import ObjectConflict, ObjectNotFound, ServerUnreachable, SkyrunAPIError
from skyrun.jobs.templates import JobTemplateError
from skyrun.retries import Backoff
from skyrun.schemas.core import FlowRun, FlowRunFilter
from skyrun.schemas.states import TERMINAL_TYPES, StateType
from skyrun.schemas.work_pools import MAX_HEARTBEAT_RUNS, ClaimedRun, WorkPool, WorkPoolCreate
from skyrun.settings import Settings
from skyrun.workers.base import BaseWorker
from skyrun.workers.health import HealthServer, PollHealth, default_threshold
from skyrun.workers.runs import KILL_GRACE_SECONDS, RunLauncher
from skyrun.workers.slots import LaunchedRun, RunTracker, Slots

logger = logging.getLogger("skyrun.worker")

# The longest wait between failed polls or heartbeats: low, so that a worker is
# polling again within seconds of its server coming back (after a restart).
RECONNECT_MAX_SECONDS = 5.0


class WorkerError(Exception):
    """The worker cannot do what it was asked; the message says why."""


class WorkerConfigError(WorkerError):
    """The worker cannot start as asked (e.g. the pool is of another type)."""


@dataclass
class WorkerOptions:
    """How a worker runs; `skyrun worker start` fills these from its options."""

    pool_name: str
    worker_name: str
    queues: list[str] = field(default_factory=list)
    limit: int | None = None
    run_once: bool = False
    healthcheck_port: int | None = None  # None: no health check server
    poll_seconds: float = 10.0  # the long-poll's wait
    run_once_wait_seconds: float = 2.0
    health_threshold_seconds: float | None = None  # None: max(30 s, 3 x poll_seconds)
    cancel_check_seconds: float = 1.0
    kill_grace_seconds: float = KILL_GRACE_SECONDS


def ensure_work_pool(
    client: SkyrunClient, pool_name: str, worker_type: str, template: dict[str, Any]
) -> WorkPool:
    """Read the pool, creating it with the type's default template if it does not exist."""
    try:
        pool = client.read_work_pool(pool_name)
    except ObjectNotFound:
        try:
            pool = client.create_work_pool(
                WorkPoolCreate(name=pool_name, type=worker_type, base_job_template=template)
            )
            logger.info("Created work pool %r of type %r", pool_name, worker_type)
        except ObjectConflict:  # another worker created it a moment ago
            pool = client.read_work_pool(pool_name)
    if pool.type != worker_type:
        raise WorkerConfigError(
            f"work pool {pool_name!r} is of type {pool.type!r}, but this worker runs "
            f"{worker_type!r} jobs; start it with '-t {pool.type}' or use another pool"
        )
    return pool


def check_work_queues(client: SkyrunClient, pool_name: str, queues: list[str]) -> None:
    """Refuse queue names the pool does not have (a typo would otherwise poll nothing)."""
    if not queues:
        return
    existing = {queue.name for queue in client.list_work_queues(pool_name)}
    missing = [name for name in queues if name not in existing]
    if missing:
        raise WorkerConfigError(
            f"work pool {pool_name!r} has no work queue named {', '.join(map(repr, missing))} "
            f"(it has {', '.join(map(repr, sorted(existing)))}); create it first or fix the name"
        )


class WorkerLoop:
    """Polls one work pool and runs what it claims on the worker type's infrastructure."""

    def __init__(
        self,
        worker: BaseWorker,
        client: SkyrunClient,
        settings: Settings,
        options: WorkerOptions,
    ) -> None:
        self.worker = worker
        self.client = client
        self.settings = settings
        self.options = options
        self.slots = Slots(options.limit)
        self.tracker = RunTracker()
        self.stopping = threading.Event()
        self.health = PollHealth(
            options.health_threshold_seconds or default_threshold(options.poll_seconds)
        )
        self.launcher = RunLauncher(client, worker, self.tracker, settings, self.stopping)
        # The key of the poll being made: kept until a reply arrives, so a poll
        # retried after a lost reply gets back the runs the server gave it.
        self._claim_key: str | None = None

    # -- lifecycle -------------------------------------------------------------
    def run(self) -> None:
        """Run until stopped (or, with run_once, until the runs of one claim end)."""
        opts = self.options
        health_server = None
        if opts.healthcheck_port is not None:
            health_server = HealthServer(self.health, opts.healthcheck_port)
            health_server.start()
        if not opts.run_once and self.client.run_embedded_services():
            logger.info("No SKYRUN_API_URL: this worker also runs the scheduler and housekeeping")
        running = self._start_worker_type()
        if running and not opts.run_once:
            self._reattach(running)
        self._start_daemon(self._heartbeat_loop, "skyrun-worker-heartbeat")
        self._start_daemon(self._cancel_loop, "skyrun-worker-cancel")
        logger.info(
            "Worker %r polling work pool %r%s (limit %s)",
            opts.worker_name,
            opts.pool_name,
            f" queues {', '.join(opts.queues)}" if opts.queues else "",
            opts.limit if opts.limit is not None else "none",
        )
        try:
            if opts.run_once:
                if self._claim_once(opts.run_once_wait_seconds) is not None:
                    raise WorkerError(f"could not poll work pool {opts.pool_name!r}")
                while not self.slots.wait_idle(timeout=0.5):
                    if self.stopping.is_set():
                        self._shutdown()
                        break
            else:
                claimer = self._start_daemon(self._claim_loop, "skyrun-worker-claim")
                self.stopping.wait()
                claimer.join(timeout=1.0)
                self._shutdown()
        finally:
            self.stopping.set()
            if health_server is not None:
                health_server.stop()
            self.worker.close()

    def stop(self) -> None:
        """Ask the worker to stop (safe from a signal handler or any thread)."""
        self.stopping.set()

    def _shutdown(self) -> None:
        if self.worker.kill_on_shutdown:
            for flow_run_id, infrastructure_id in self.tracker.infrastructure_ids().items():
                logger.info("Stopping flow run %s (%s)", flow_run_id, infrastructure_id)
                self._kill_quietly(infrastructure_id)
            if not self.slots.wait_idle(self.options.kill_grace_seconds + 15):
                logger.warning("Some runs did not finish reporting before the worker stopped")
        else:
            running = len(self.tracker.infrastructure_ids())
            if running:
                logger.info("Leaving %d run(s) running; they report their own states", running)

    def _start_worker_type(self) -> dict[uuid.UUID, str]:
        """Let the worker type start its duties; what it still has running for the pool."""
        try:
            pool = self.client.read_work_pool(self.options.pool_name)
            try:
                configuration: dict[str, Any] | None = self.launcher.prepare(pool.base_job_template)
            except JobTemplateError:
                configuration = None  # e.g. a required variable without a default
            return self.worker.start(pool, configuration)
        except Exception as exc:
            logger.warning("Starting the %s worker's duties failed: %s", self.worker.type, exc)
            return {}

    def _reattach(self, running: dict[uuid.UUID, str]) -> None:
        """Watch again the runs this worker holds whose infrastructure still runs (a restart)."""
        try:
            me = self.client.worker_heartbeat(
                self.options.pool_name,
                self.options.worker_name,
                self.settings.worker_heartbeat_interval,
            )
        except Exception as exc:
            logger.warning("Could not re-attach to running runs: %s", exc)
            return
        for flow_run_id, infrastructure_id in running.items():
            try:
                run = self.client.read_flow_run(flow_run_id)
            except Exception as exc:
                logger.warning("Flow run %s: not re-attached: %s", flow_run_id, exc)
                continue
            held = run.worker_id == me.id
            if not held or run.state is None or run.state.type in TERMINAL_TYPES:
                continue
            logger.info("Flow run %s: watching %s again", flow_run_id, infrastructure_id)
            self.slots.take()
            self.tracker.add(flow_run_id)
            self.tracker.started(flow_run_id, infrastructure_id)
            self._start_daemon(
                lambda r=flow_run_id, i=infrastructure_id: self._resume_thread(r, i, me.id),
                f"skyrun-run-{flow_run_id}",
            )

    def _resume_thread(
        self, flow_run_id: uuid.UUID, infrastructure_id: str, worker_id: uuid.UUID
    ) -> None:
        try:
            self.launcher.resume(flow_run_id, infrastructure_id, worker_id)
        except Exception:
            logger.exception("Flow run %s: watching it again failed", flow_run_id)
        finally:
            self.tracker.remove(flow_run_id)
            self.slots.release()

    # -- claiming --------------------------------------------------------------
    def _claim_loop(self) -> None:
        backoff = Backoff(initial=0.5, maximum=RECONNECT_MAX_SECONDS)
        while not self.stopping.is_set():
            if self.slots.wait_for_free(timeout=1.0) <= 0:
                continue
            failure = self._claim_once(self.options.poll_seconds)
            if failure is None:
                backoff.succeeded()
                continue
            delay = backoff.failed(failure)
            logger.info("Polling again in %.1fs", delay)
            self.stopping.wait(delay)

    def _claim_once(self, wait_seconds: float) -> Exception | None:
        """One long-poll; starts a thread per claimed run. Returns why the poll failed."""
        opts = self.options
        self._claim_key = self._claim_key or uuid.uuid4().hex
        try:
            response = self.client.claim_runs(
                opts.pool_name,
                opts.worker_name,
                queues=opts.queues,
                limit=max(1, self.slots.free()),
                wait_seconds=wait_seconds,
                claim_key=self._claim_key,
            )
        except (ServerUnreachable, SkyrunAPIError) as exc:
            logger.warning("Polling work pool %r failed: %s", opts.pool_name, exc)
            return exc
        except Exception as exc:
            logger.exception("Polling work pool %r failed", opts.pool_name)
            return exc
        self._claim_key = None
        self.health.polled()
        for claimed in response.runs:
            self._start_run(claimed)
        return None

    def _start_run(self, claimed: ClaimedRun) -> None:
        flow_run = FlowRun.model_validate(claimed.flow_run)
        self.slots.take()
        try:
            entry = self.tracker.add(flow_run.id)
            self._start_daemon(
                lambda: self._run_thread(claimed, flow_run, entry), f"skyrun-run-{flow_run.id}"
            )
        except BaseException:
            self.tracker.remove(flow_run.id)
            self.slots.release()
            raise

    def _run_thread(self, claimed: ClaimedRun, flow_run: FlowRun, entry: LaunchedRun) -> None:
        try:
            self.launcher.handle(claimed, flow_run)
        except Exception:
            logger.exception("Flow run %s: the worker failed while handling it", flow_run.id)
            self.launcher.propose(
                flow_run.id, StateType.CRASHED, "the worker failed while handling it"
            )
        finally:
            self.tracker.remove(flow_run.id, entry)
            self.slots.release()

    # -- background duties -----------------------------------------------------
    def _heartbeat_loop(self) -> None:
        interval = self.settings.worker_heartbeat_interval
        # After a failure the next heartbeat comes sooner than the interval, so the
        # server sees the worker ONLINE again soon after it is back.
        backoff = Backoff(initial=0.5, maximum=min(interval, RECONNECT_MAX_SECONDS))
        while not self.stopping.is_set():
            try:
                self.client.worker_heartbeat(
                    self.options.pool_name,
                    self.options.worker_name,
                    interval,
                    # The newest runs, which may still be PENDING, if it holds more
                    # than one heartbeat may name (those launched long ago run by now).
                    flow_run_ids=self.tracker.run_ids()[-MAX_HEARTBEAT_RUNS:],
                )
            except Exception as exc:
                delay = backoff.failed(exc)
                logger.warning("Heartbeat failed: %s (next in %.1fs)", exc, delay)
            else:
                backoff.succeeded()
                delay = interval
            self.stopping.wait(delay)

    def _cancel_loop(self) -> None:
        while not self.stopping.wait(self.options.cancel_check_seconds):
            if self.slots.in_use == 0:
                continue
            try:
                page = self.client.filter_flow_runs(
                    FlowRunFilter(
                        work_pool_name=self.options.pool_name,
                        state_type=[StateType.CANCELLING],
                        limit=1000,
                    ),
                    retry_for=CALLER_RETRIES,  # checked again in a second anyway
                )
            except Exception as exc:
                logger.warning("Checking for cancelled runs failed: %s", exc)
                continue
            for run in page.items:
                first, infrastructure_id = self.tracker.request_cancel(run.id)
                if first:
                    self._start_daemon(
                        lambda r=run.id, i=infrastructure_id: self._cancel(r, i),
                        f"skyrun-cancel-{run.id}",
                    )

    def _cancel(self, flow_run_id: uuid.UUID, infrastructure_id: str | None) -> None:
        logger.info("Flow run %s: cancelling", flow_run_id)
        if infrastructure_id is not None:
            self._kill_quietly(infrastructure_id)
        self.launcher.propose(flow_run_id, StateType.CANCELLED, "cancelled by request")

    def _kill_quietly(self, infrastructure_id: str) -> None:
        try:
            self.worker.kill(infrastructure_id, self.options.kill_grace_seconds)
        except Exception as exc:
            logger.warning("Could not stop %s: %s", infrastructure_id, exc)

    @staticmethod
    def _start_daemon(target: Any, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread
