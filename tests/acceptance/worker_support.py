"""Helpers for the worker acceptance tests: a real server, real workers, flow files.

Everything runs as subprocesses of the installed `skyrun` executable: the
server (`skyrun server start`), the workers (`skyrun worker start`) and, under
them, each flow run (`skyrun flow-run execute`).
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import processes
from processes import SKYRUN, clean_env, free_port, stop, wait_for
from skyrun.client.client import SkyrunClient
from skyrun.schemas.core import FlowRun
from skyrun.schemas.deployments import Deployment, DeploymentCreate, DeploymentRunCreate
from skyrun.schemas.states import TERMINAL_TYPES, StateType
from skyrun.settings import Settings

__all__ = ["SKYRUN", "ServerProcess", "WorkerProcess", "clean_env", "free_port", "wait_for"]

# Server settings that make liveness and recovery fast enough to test.
FAST_SERVER_ENV = {
    "SKYRUN_WORKER_HEARTBEAT_INTERVAL": "1",
    "SKYRUN_CLAIM_LEASE_SECONDS": "2",
    "SKYRUN_HOUSEKEEPING_INTERVAL": "0.5",
    "SKYRUN_SCHEDULER_INTERVAL": "60",
    "SKYRUN_CANCELLING_TIMEOUT_SECONDS": "300",
}


class ServerProcess(processes.ServerProcess):
    """A server with FAST_SERVER_ENV (quick liveness and recovery), and clients for it."""

    def __init__(
        self, home: Path, database_url: str | None = None, *, port: int | None = None, **env: str
    ) -> None:
        super().__init__(home, port=port, database_url=database_url, **{**FAST_SERVER_ENV, **env})

    def client(self) -> SkyrunClient:
        settings = Settings(home=self.home).model_copy(
            update={"api_url": self.api_url, "api_key": None, "database_url": None}
        )
        return SkyrunClient(settings)


class WorkerProcess:
    """`skyrun worker start -p POOL ...` against a server, output kept in a file."""

    def __init__(self, server: ServerProcess, pool: str, *args: str, **env: str) -> None:
        self.name = f"worker-{uuid.uuid4().hex[:6]}"
        self.log_path = server.home / f"{self.name}.log"
        self._log = self.log_path.open("wb")
        command = [str(SKYRUN), "worker", "start", "-p", pool, "--name", self.name, *args]
        worker_env = {"SKYRUN_API_URL": server.api_url, **FAST_SERVER_ENV, **env}
        self.process = subprocess.Popen(
            command,
            env=clean_env(server.home, **worker_env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        stop(self.process)
        self._log.close()
        return self.process.returncode


# Flows whose every execution leaves a line in a ledger file (O_APPEND, so concurrent
# writes do not interleave): counting the lines counts executions, not log lines.
# `record_run` only records; `steps_run` also runs `steps` task runs that each log a
# line, and logs their total, so a test can check that every record arrived once.
LEDGER_FLOWS = """
import os
import sys
import time

from skyrun import flow, get_run_logger, task
from skyrun.sdk.context import current_flow_run


def _record(path: str) -> None:
    line = f"{current_flow_run().flow_run_id}\\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@flow
def record_run(path: str, seconds: float = 0.0):
    time.sleep(seconds)
    _record(path)


@task
def step(i: int) -> int:
    get_run_logger().info("step %d done", i)
    return i


@flow
def steps_run(path: str, steps: int, seconds: float = 0.0):
    time.sleep(seconds / 2)
    total = sum(step.map(range(steps)).result())
    time.sleep(seconds / 2)
    get_run_logger().info("total %d", total)
    _record(path)


if __name__ == "__main__":
    record_run(sys.argv[1])
"""


def assert_steps_recorded_once(client: SkyrunClient, run_id: uuid.UUID, steps: int) -> None:
    """A `steps_run` run has its `steps` COMPLETED task runs and each log line exactly once."""
    task_runs = client.list_task_runs(run_id).items
    assert len(task_runs) == steps, run_id
    assert {t.state.type for t in task_runs if t.state} == {StateType.COMPLETED}
    messages = [log.message for log in client.read_logs(run_id, limit=1000)]
    for i in range(steps):
        assert messages.count(f"step {i} done") == 1, (run_id, messages)
    assert messages.count(f"total {sum(range(steps))}") == 1, (run_id, messages)


def write_flows(directory: Path, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "flows.py"
    path.write_text(source)
    return path


def deploy(
    client: SkyrunClient,
    directory: Path,
    pool: str,
    *,
    name: str | None = None,
    entrypoint: str = "flows.py:myflow",
    job_variables: dict[str, Any] | None = None,
    pull_steps: list[dict[str, Any]] | None = None,
) -> Deployment:
    """Register a deployment of `entrypoint` in `directory`, run by workers of `pool`."""
    steps = [{"set_working_directory": {"directory": str(directory)}}]
    return client.upsert_deployment(
        DeploymentCreate(
            flow_name=entrypoint.rsplit(":", 1)[1].replace("_", "-"),
            name=name or f"deployment-{uuid.uuid4().hex[:6]}",
            entrypoint=entrypoint,
            path=str(directory),
            work_pool_name=pool,
            job_variables=job_variables or {},
            pull_steps=steps + (pull_steps or []),
        )
    )


def run_deployment(client: SkyrunClient, deployment: Deployment, **options: Any) -> FlowRun:
    return client.create_deployment_run(deployment.id, DeploymentRunCreate(**options))


def state_of(client: SkyrunClient, run_id: uuid.UUID) -> StateType | None:
    state = client.read_flow_run(run_id).state
    return state.type if state else None


def wait_final(client: SkyrunClient, run_id: uuid.UUID, timeout: float = 60) -> FlowRun:
    def final() -> FlowRun | None:
        run = client.read_flow_run(run_id)
        return run if run.state and run.state.type in TERMINAL_TYPES else None

    return wait_for(final, timeout, f"flow run {run_id} to end")


def wait_state(
    client: SkyrunClient, run_id: uuid.UUID, state_type: StateType, timeout: float = 60
) -> FlowRun:
    def reached() -> FlowRun | None:
        run = client.read_flow_run(run_id)
        if run.state and run.state.type in TERMINAL_TYPES and run.state.type != state_type:
            raise AssertionError(f"flow run {run_id} ended {run.state} instead of {state_type}")
        return run if run.state and run.state.type == state_type else None

    return wait_for(reached, timeout, f"flow run {run_id} to be {state_type.value}")


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
