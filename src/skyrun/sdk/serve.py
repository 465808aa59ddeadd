"""`flow.serve()`: register a deployment without a work pool and run its runs here.

Each due run is claimed by proposing PENDING (the server accepts only one claim)
and executed by `skyrun flow-run execute` in a child process, as a worker would.
(Imported by `Flow.serve` only: it needs the client.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType
from typing import Any

from skyrun.client.client import SkyrunClient, get_client
from skyrun.client.errors import ServerUnreachable, SkyrunAPIError
from skyrun.jobs.exit_codes import ABORTED_EXIT_CODE
from skyrun.schedules import describe_schedule, parse_schedule
from skyrun.schemas.core import FlowRun, FlowRunFilter
from skyrun.schemas.deployments import Deployment
from skyrun.schemas.orchestration import Decision
from skyrun.schemas.states import AWAITING_RETRY, StateCreate, StateType, utcnow
from skyrun.sdk.deploy import DeploymentError, deployment_create, schedules_for, upsert
from skyrun.sdk.flows import Flow
from skyrun.workers.base import execute_command

# A run asked to cancel gets this long to stop by itself (its engine watches for
# CANCELLING) before serve terminates its process.
CANCEL_GRACE_SECONDS = 10.0
STOP_GRACE_SECONDS = 10.0


@dataclass
class _Child:
    run: FlowRun
    process: subprocess.Popen[bytes]
    cancelling_since: float | None = None


class DeploymentServer:
    """Runs a deployment's due runs in child processes: the loop behind `flow.serve()`."""

    def __init__(
        self, client: SkyrunClient, deployment: Deployment, limit: int | None, poll_seconds: float
    ) -> None:
        self.check_options(limit, poll_seconds)
        self.client = client
        self.deployment = deployment
        self.limit = limit
        self.poll_seconds = poll_seconds
        self.children: list[_Child] = []

    @staticmethod
    def check_options(limit: int | None, poll_seconds: float) -> None:
        if limit is not None and limit < 1:
            raise DeploymentError(f"limit must be 1 or more, not {limit}")
        if poll_seconds <= 0:
            raise DeploymentError(f"poll_seconds must be more than 0, not {poll_seconds}")

    def run_forever(self) -> None:
        """Poll until Ctrl-C (or SIGTERM), then stop the runs still going."""
        if self.client.run_embedded_services():
            # No server: this process schedules the deployment's runs itself.
            print("No SKYRUN_API_URL: scheduling runs in this process.", flush=True)
        try:
            with _sigterm_as_interrupt():
                while True:
                    try:
                        self.poll_once()
                    except (ServerUnreachable, SkyrunAPIError) as exc:
                        # A server restart must not stop serving: try again next poll.
                        print(f"Cannot poll the skyrun API ({exc}); retrying.", flush=True)
                    time.sleep(self.poll_seconds)
        except KeyboardInterrupt:
            self.stop()

    def poll_once(self) -> None:
        self._reap()
        self._watch_cancellations()
        self._start_due_runs()

    def _start_due_runs(self) -> None:
        room = (self.limit - len(self.children)) if self.limit is not None else 100
        if room <= 0:
            return
        due = self.client.filter_flow_runs(
            FlowRunFilter(
                deployment_id=self.deployment.id,
                state_type=[StateType.SCHEDULED],
                expected_start_before=utcnow(),
                sort="expected_start_time_asc",
                limit=room,
            )
        ).items
        for flow_run in due:
            if flow_run.state is not None and flow_run.state.name == AWAITING_RETRY:
                continue  # its own process retries it
            # Only ACCEPT makes the run ours: the server refuses a second PENDING.
            response = self.client.set_flow_run_state(
                flow_run.id, StateCreate(type=StateType.PENDING, message="claimed by serve")
            )
            if response.decision is Decision.ACCEPT:
                self._launch(flow_run)

    def _launch(self, flow_run: FlowRun) -> None:
        env = {**os.environ, "SKYRUN_FLOW_RUN_ID": str(flow_run.id)}
        try:
            process = subprocess.Popen(execute_command(flow_run.id), env=env)
        except OSError as exc:
            self._set_final(flow_run.id, StateType.CRASHED, f"cannot start its process: {exc}")
            return
        print(f"Started flow run {flow_run.name!r} ({flow_run.id}).", flush=True)
        self.children.append(_Child(flow_run, process))

    def _reap(self) -> None:
        for child in list(self.children):
            code = child.process.poll()
            if code is not None:
                # Reported first: if the server does not answer now, the child stays
                # listed and its end is reported at the next poll, not lost.
                self._finished(child, code)
                self.children.remove(child)

    def _finished(self, child: _Child, code: int) -> None:
        if code == ABORTED_EXIT_CODE:
            return  # another process owns the run now
        state = self.client.read_flow_run(child.run.id).state
        if state is not None and state.type is StateType.CANCELLING:
            state = self._set_final(child.run.id, StateType.CANCELLED, "cancelled while running")
        elif state is None or not state.is_final:
            state = self._set_final(
                child.run.id,
                StateType.CRASHED,
                f"its process exited with code {code} without reporting a final state",
            )
        shown = state.type.value if state is not None else "in an unknown state"
        print(f"Flow run {child.run.name!r} ended {shown}.", flush=True)

    def _watch_cancellations(self) -> None:
        for child in self.children:
            state = self.client.read_flow_run(child.run.id).state
            if state is None or state.type is not StateType.CANCELLING:
                continue
            now = time.monotonic()
            if child.cancelling_since is None:
                child.cancelling_since = now
            elif now - child.cancelling_since > CANCEL_GRACE_SECONDS:
                child.process.terminate()

    def _set_final(self, run_id: uuid.UUID, kind: StateType, message: str) -> Any:
        response = self.client.set_flow_run_state(run_id, StateCreate(type=kind, message=message))
        return response.state

    def stop(self) -> None:
        """Stop the runs still going; mark CRASHED any that did not report a final state."""
        if self.children:
            print(f"Stopping {len(self.children)} running flow run(s)...", flush=True)
        for child in self.children:
            if child.process.poll() is None:
                child.process.terminate()
        for child in self.children:
            try:
                child.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            state = self.client.read_flow_run(child.run.id).state
            if state is None or not state.is_final:
                self._set_final(
                    child.run.id, StateType.CRASHED, "the process serving it was stopped"
                )
        self.children.clear()
        print("Stopped serving.", flush=True)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while serving (only possible in the main thread)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_flow(
    flow: Flow[Any, Any],
    name: str,
    *,
    cron: str | None = None,
    interval: float | timedelta | None = None,
    rrule: str | None = None,
    parameters: dict[str, Any] | None = None,
    limit: int | None = None,
    poll_seconds: float = 1.0,
    client: SkyrunClient | None = None,
) -> None:
    """Register a deployment without a work pool and run its runs here until Ctrl-C."""
    DeploymentServer.check_options(limit, poll_seconds)
    client = client or get_client()
    data = deployment_create(
        flow,
        name,
        work_pool_name=None,
        work_queue_name=None,
        job_variables=None,
        parameters=parameters,
        schedules=schedules_for(cron, interval, rrule, None),
        tags=None,
        description=None,
        version=None,
        paused=False,
    )
    deployment = upsert(client, data)
    server = DeploymentServer(client, deployment, limit, poll_seconds)
    full_name = f"{deployment.flow_name}/{deployment.name}"
    print(f"Serving deployment {full_name!r} ({deployment.entrypoint}).", flush=True)
    for item in deployment.schedules:
        print(f"Schedule: {describe_schedule(parse_schedule(item.schedule))}", flush=True)
    print(f"Trigger a run with: skyrun deployment run {full_name}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    server.run_forever()
