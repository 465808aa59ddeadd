"""Acceptance: `skyrun worker start` with the process worker against a real server.

A real `skyrun server start` (SQLite), real worker processes, and each flow run
in its own `skyrun flow-run execute` process, as in production.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from worker_support import (
    SKYRUN,
    ServerProcess,
    WorkerProcess,
    clean_env,
    deploy,
    free_port,
    pid_alive,
    run_deployment,
    wait_final,
    wait_for,
    wait_state,
    write_flows,
)

from skyrun.client.client import SkyrunClient
from skyrun.client.errors import SkyrunAPIError
from skyrun.schemas.states import StateCreate, StateType
from skyrun.schemas.work_pools import WorkPoolCreate, WorkPoolUpdate

FLOWS = """
import os
import sys
import time
from pathlib import Path

from skyrun import flow, get_run_logger


@flow
def myflow(greeting: str = "hello"):
    print(f"printed: {greeting} from the flow")
    get_run_logger().info("logged: %s from the run logger", greeting)
    return greeting


@flow
def marker(path: str):
    Path(path).write_text("launched")


@flow
def fails():
    raise ValueError("this flow fails")


@flow
def vanish(code: int = 3):
    print("about to vanish", flush=True)
    os._exit(code)


@flow
def sleeper(pid_file: str, seconds: float = 60):
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("worker-server"))
    yield server
    server.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[SkyrunClient]:
    client = server.client()
    yield client
    client.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_flows(tmp_path / "project", FLOWS)
    return tmp_path / "project"


@pytest.fixture
def pool(client: SkyrunClient) -> str:
    """A new process work pool (as `skyrun work-pool create --type process` makes)."""
    name = f"pool-{uuid.uuid4().hex[:8]}"
    client.create_work_pool(WorkPoolCreate(name=name, type="process"))
    return name


@pytest.fixture
def start_worker(server: ServerProcess) -> Iterator[object]:
    started: list[WorkerProcess] = []

    def start(pool: str, *args: str, **env: str) -> WorkerProcess:
        worker = WorkerProcess(server, pool, *args, **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def log_messages(client: SkyrunClient, run_id: uuid.UUID) -> list[str]:
    return [log.message for log in client.read_logs(run_id, limit=1000)]


def test_deployment_run_completes_and_its_output_is_in_the_logs(
    client: SkyrunClient, project: Path, pool: str, start_worker
) -> None:
    worker = start_worker(pool, "--limit", "2")
    deployment = deploy(client, project, pool)
    run = run_deployment(client, deployment, parameters={"greeting": "bonjour"})

    finished = wait_final(client, run.id)

    assert finished.state is not None and finished.state.type == StateType.COMPLETED, (
        finished.state,
        worker.output(),
    )
    history = [state.type for state in client.read_flow_run_states(run.id)]
    assert history == [
        StateType.SCHEDULED,
        StateType.PENDING,
        StateType.RUNNING,
        StateType.COMPLETED,
    ]
    assert finished.infrastructure_id is not None
    assert finished.infrastructure_id.startswith("pid:")
    messages = wait_for(
        lambda: (m := log_messages(client, run.id)) and any("printed" in x for x in m) and m,
        10,
        "the printed line in the run's logs",
    )
    assert "printed: bonjour from the flow" in messages
    assert "logged: bonjour from the run logger" in messages
    # The run logger's line reached the logs once (through the SDK), not again from stdout.
    assert sum("logged: bonjour" in m for m in messages) == 1
    # The worker also echoes the flow's output.
    assert "printed: bonjour from the flow" in worker.output()


def test_job_variables_that_fail_the_schema_fail_the_run_without_launching(
    client: SkyrunClient, project: Path, pool: str, start_worker
) -> None:
    marker_file = project / "launched.txt"
    deployment = deploy(client, project, pool, entrypoint="flows.py:marker")
    # The server refuses them when the run is created, naming the variable...
    with pytest.raises(SkyrunAPIError, match=r"job variable 'stream_output'.*boolean"):
        run_deployment(
            client,
            deployment,
            parameters={"path": str(marker_file)},
            job_variables={"stream_output": "loudly"},
        )
    # ...and a run whose variables the pool stopped accepting after it was created
    # fails when the worker renders its job, before anything is launched.
    run = run_deployment(
        client,
        deployment,
        parameters={"path": str(marker_file)},
        job_variables={"stream_output": True},
    )
    template = client.read_work_pool(pool).base_job_template
    template["variables"]["properties"]["stream_output"].update(type="string", default="yes")
    client.update_work_pool(pool, WorkPoolUpdate(base_job_template=template))
    start_worker(pool)

    finished = wait_final(client, run.id)

    assert finished.state is not None and finished.state.type == StateType.FAILED
    assert finished.state.message is not None
    assert "stream_output" in finished.state.message
    assert "string" in finished.state.message
    assert finished.infrastructure_id is None
    assert not marker_file.exists()


def test_process_that_exits_without_a_final_state_makes_the_run_crashed(
    client: SkyrunClient, project: Path, pool: str, start_worker
) -> None:
    start_worker(pool)
    deployment = deploy(client, project, pool, entrypoint="flows.py:vanish")
    run = run_deployment(client, deployment, parameters={"code": 3})

    finished = wait_final(client, run.id)

    assert finished.state is not None and finished.state.type == StateType.CRASHED
    assert finished.state.message is not None
    assert "exited with code 3" in finished.state.message
    assert "without reporting a final state" in finished.state.message


def test_cancelling_a_running_run_kills_its_process(
    client: SkyrunClient, project: Path, pool: str, start_worker
) -> None:
    start_worker(pool)
    pid_file = project / "sleeper.pid"
    deployment = deploy(client, project, pool, entrypoint="flows.py:sleeper")
    run = run_deployment(client, deployment, parameters={"pid_file": str(pid_file)})
    wait_state(client, run.id, StateType.RUNNING)
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 10, "the pid file"))
    assert pid_alive(pid)

    response = client.set_flow_run_state(run.id, StateCreate(type=StateType.CANCELLING))
    assert response.decision == "ACCEPT"

    finished = wait_final(client, run.id, timeout=20)
    assert finished.state is not None and finished.state.type == StateType.CANCELLED
    wait_for(lambda: not pid_alive(pid), 10, f"process {pid} to be gone")


def test_cancelling_a_pending_run_kills_its_process(
    client: SkyrunClient, project: Path, pool: str, start_worker
) -> None:
    start_worker(pool)
    # A slow pull step keeps the launched run PENDING: it is RUNNING only once the flow starts.
    deployment = deploy(
        client,
        project,
        pool,
        entrypoint="flows.py:myflow",
        pull_steps=[{"run_shell_script": {"script": "sleep 60"}}],
    )
    run = run_deployment(client, deployment)
    pending = wait_for(
        lambda: (r := client.read_flow_run(run.id)).infrastructure_id and r,
        20,
        "the run's process to start",
    )
    assert pending.state is not None and pending.state.type == StateType.PENDING
    pid = int(pending.infrastructure_id.removeprefix("pid:"))
    assert pid_alive(pid)

    client.set_flow_run_state(run.id, StateCreate(type=StateType.CANCELLING))

    finished = wait_final(client, run.id, timeout=20)
    assert finished.state is not None and finished.state.type == StateType.CANCELLED
    wait_for(lambda: not pid_alive(pid), 10, f"process {pid} to be gone")
    assert [s.type for s in client.read_flow_run_states(run.id)][-3:] == [
        StateType.PENDING,
        StateType.CANCELLING,
        StateType.CANCELLED,
    ]


def test_limit_slots_come_back_after_a_crash_and_a_failure(
    client: SkyrunClient, project: Path, pool: str, start_worker
) -> None:
    crashing = deploy(client, project, pool, entrypoint="flows.py:vanish")
    failing = deploy(client, project, pool, entrypoint="flows.py:fails")
    good = deploy(client, project, pool, entrypoint="flows.py:myflow")
    runs = [
        run_deployment(client, crashing, parameters={"code": 7}),
        run_deployment(client, failing),
        run_deployment(client, good),
    ]
    worker = start_worker(pool, "--limit", "1")

    ends = [wait_final(client, run.id) for run in runs]

    assert [end.state.type for end in ends if end.state] == [
        StateType.CRASHED,
        StateType.FAILED,
        StateType.COMPLETED,
    ], worker.output()


def test_healthcheck_answers_on_port(server: ServerProcess, pool: str, start_worker) -> None:
    port = free_port()
    start_worker(pool, "--with-healthcheck", PORT=str(port))

    def health() -> httpx.Response | None:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
        except httpx.HTTPError:
            return None

    response = wait_for(health, 30, "the health check to answer")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_a_worker_of_another_type_than_its_pool_is_refused_in_one_line(
    server: ServerProcess, pool: str
) -> None:
    # (A worker type missing from this skyrun installs nothing: tests/unit/test_worker_install.py.)
    result = subprocess.run(
        [str(SKYRUN), "worker", "start", "-p", pool, "-t", "cloud-run"],
        env=clean_env(server.home, SKYRUN_API_URL=server.api_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert "is of type 'process', but this worker runs 'cloud-run' jobs" in message, message
    assert "start it with '-t process'" in message
    assert "Traceback" not in result.stderr


def test_a_dead_workers_claimed_runs_are_recovered(
    client: SkyrunClient, project: Path, pool: str, start_worker
) -> None:
    deployment = deploy(client, project, pool)
    run = run_deployment(client, deployment)
    # A worker that claims the run and is never heard of again.
    claim = client.claim_runs(pool, "ghost-worker", limit=1)
    assert [c.flow_run["id"] for c in claim.runs] == [str(run.id)]
    assert client.read_flow_run(run.id).state.type == StateType.PENDING

    start_worker(pool)
    finished = wait_final(client, run.id, timeout=60)

    assert finished.state is not None and finished.state.type == StateType.COMPLETED
    history = client.read_flow_run_states(run.id)
    assert [s.type for s in history] == [
        StateType.SCHEDULED,
        StateType.PENDING,
        StateType.SCHEDULED,
        StateType.PENDING,
        StateType.RUNNING,
        StateType.COMPLETED,
    ]
    assert history[2].name == "Rescheduled"
    assert "lease ran out" in (history[2].message or "")


def test_flow_run_execute_reports_a_bad_entrypoint(
    client: SkyrunClient, project: Path, pool: str, server: ServerProcess
) -> None:
    deployment = deploy(client, project, pool, entrypoint="flows.py:no_such_flow")
    run = run_deployment(client, deployment)
    result = subprocess.run(
        [str(SKYRUN), "flow-run", "execute"],
        env=clean_env(server.home, SKYRUN_API_URL=server.api_url, SKYRUN_FLOW_RUN_ID=str(run.id)),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.getcwd(),
    )
    assert result.returncode == 1
    finished = client.read_flow_run(run.id)
    assert finished.state is not None and finished.state.type == StateType.FAILED
    assert "flows.py:no_such_flow" in (finished.state.message or "")
    assert "no attribute 'no_such_flow'" in (finished.state.message or "")


def test_stopping_the_worker_stops_its_runs_and_marks_them_crashed(
    client: SkyrunClient, project: Path, pool: str, start_worker
) -> None:
    worker = start_worker(pool)
    pid_file = project / "sleeper.pid"
    deployment = deploy(client, project, pool, entrypoint="flows.py:sleeper")
    run = run_deployment(client, deployment, parameters={"pid_file": str(pid_file)})
    wait_state(client, run.id, StateType.RUNNING)
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 10, "the pid file"))

    assert worker.stop() == 0

    finished = client.read_flow_run(run.id)
    assert finished.state is not None and finished.state.type == StateType.CRASHED
    assert "the worker stopped while the run was in progress" in (finished.state.message or "")
    wait_for(lambda: not pid_alive(pid), 10, f"process {pid} to be gone")


def test_run_once_runs_what_it_claimed_and_exits(
    client: SkyrunClient, project: Path, pool: str, server: ServerProcess
) -> None:
    deployment = deploy(client, project, pool)
    runs = [run_deployment(client, deployment) for _ in range(2)]
    result = subprocess.run(
        [str(SKYRUN), "worker", "start", "-p", pool, "--run-once", "--limit", "2"],
        env=clean_env(server.home, SKYRUN_API_URL=server.api_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for run in runs:
        state = client.read_flow_run(run.id).state
        assert state is not None and state.type == StateType.COMPLETED


def test_parameters_that_do_not_validate_fail_the_run(
    client: SkyrunClient, project: Path, pool: str, start_worker
) -> None:
    start_worker(pool)
    deployment = deploy(client, project, pool, entrypoint="flows.py:vanish")
    run = run_deployment(client, deployment, parameters={"code": "not a number"})

    finished = wait_final(client, run.id)

    assert finished.state is not None and finished.state.type == StateType.FAILED
    assert "code" in (finished.state.message or "")


def test_an_unknown_pull_step_fails_the_run_with_its_name(
    client: SkyrunClient, project: Path, pool: str, start_worker
) -> None:
    start_worker(pool)
    steps = [{"skyrun.deploy.steps.clone_it": {"repository": "x"}}]
    deployment = deploy(client, project, pool, pull_steps=steps)
    run = run_deployment(client, deployment)

    finished = wait_final(client, run.id)

    assert finished.state is not None and finished.state.type == StateType.FAILED
    assert "unknown step 'skyrun.deploy.steps.clone_it'" in (finished.state.message or "")


def test_an_unknown_work_queue_is_refused(server: ServerProcess, pool: str) -> None:
    result = subprocess.run(
        [str(SKYRUN), "worker", "start", "-p", pool, "-q", "nightly"],
        env=clean_env(server.home, SKYRUN_API_URL=server.api_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "no work queue named 'nightly'" in message, result.stderr
    assert "'default'" in message
