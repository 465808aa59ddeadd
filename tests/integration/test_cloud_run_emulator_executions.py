"""How the Cloud Run emulator runs executions: tasks, timeouts, retries, cancels."""

from __future__ import annotations

import uuid
from pathlib import Path

import psutil
import pytest
from google.api import launch_stage_pb2
from google.api_core import exceptions
from google.cloud import run_v2

from cloud_run_emulator import REGION, Emulator, cloud_run_emulator, python_job
from processes import wait_for

__all__ = ["cloud_run_emulator"]

State = run_v2.Condition.State


def run(emulator: Emulator, job: run_v2.Job) -> run_v2.Execution:
    """Create `job` in a fresh project, run it and wait for the execution."""
    jobs = emulator.jobs()
    where = f"projects/p-{uuid.uuid4().hex[:10]}/locations/{REGION}"
    created = jobs.create_job(parent=where, job_id="job", job=job).result(timeout=30)
    operation = jobs.run_job(name=created.name)
    try:
        operation.result(timeout=120)
    except exceptions.FailedPrecondition as exc:
        # A failed execution fails jobs.run's operation, with the Completed message.
        assert "failed" in str(exc)
    return emulator.executions().get_execution(name=operation.metadata.name)


def completed(execution: run_v2.Execution) -> run_v2.Condition:
    return next(c for c in execution.conditions if c.type_ == "Completed")


def env_of(directory: Path) -> list[run_v2.EnvVar]:
    return [run_v2.EnvVar(name="OUT", value=str(directory))]


def test_tasks_run_in_parallel_up_to_the_limit(
    cloud_run_emulator: Emulator, tmp_path: Path
) -> None:
    # Each task records how many tasks were running when it started, then waits for
    # a sibling so that two really overlap.
    code = (
        "import os, time; out = os.environ['OUT']; i = os.environ['CLOUD_RUN_TASK_INDEX']; "
        "open(f'{out}/start-{i}', 'w').close(); "
        "deadline = time.time() + 20\n"
        "while len([n for n in os.listdir(out) if n.startswith('start-')]) < 2 and time.time() < deadline: time.sleep(0.02)\n"
        "running = len([n for n in os.listdir(out) if n.startswith('start-')]) - len([n for n in os.listdir(out) if n.startswith('end-')])\n"
        "open(f'{out}/end-{i}-{running}', 'w').close()"
    )
    job = python_job(code, task_count=3, parallelism=2, container={"env": env_of(tmp_path)})
    execution = run(cloud_run_emulator, job)
    assert (execution.succeeded_count, execution.failed_count, execution.running_count) == (3, 0, 0)
    assert completed(execution).state == State.CONDITION_SUCCEEDED
    ends = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("end-"))
    assert [name.split("-")[1] for name in ends] == ["0", "1", "2"]
    assert max(int(name.split("-")[2]) for name in ends) <= 2
    assert execution.start_time and execution.completion_time


def test_a_task_past_its_timeout_is_killed(cloud_run_emulator: Emulator, tmp_path: Path) -> None:
    code = "import os, time; open(os.environ['OUT'] + '/pid', 'w').write(str(os.getpid())); time.sleep(600)"
    job = python_job(code, container={"env": env_of(tmp_path)}, task={"timeout": "1s"})
    execution = run(cloud_run_emulator, job)
    assert (execution.failed_count, execution.succeeded_count) == (1, 0)
    condition = completed(execution)
    assert condition.state == State.CONDITION_FAILED
    assert "The configured timeout was reached." in condition.message
    assert not psutil.pid_exists(int((tmp_path / "pid").read_text()))


def test_max_retries_runs_a_failing_task_again(
    cloud_run_emulator: Emulator, tmp_path: Path
) -> None:
    # Attempts 0 and 1 fail; attempt 2 succeeds: within max_retries=2.
    code = (
        "import os, sys; attempt = os.environ['CLOUD_RUN_TASK_ATTEMPT']; "
        "open(os.environ['OUT'] + '/attempt-' + attempt, 'w').close(); sys.exit(0 if attempt == '2' else 3)"
    )
    job = python_job(code, container={"env": env_of(tmp_path)}, task={"max_retries": 2})
    execution = run(cloud_run_emulator, job)
    assert (execution.succeeded_count, execution.retried_count, execution.failed_count) == (1, 2, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attempt-0", "attempt-1", "attempt-2"]

    failing = python_job("import sys; sys.exit(3)", task={"max_retries": 1})
    execution = run(cloud_run_emulator, failing)
    assert (execution.failed_count, execution.retried_count) == (1, 1)
    condition = completed(execution)
    assert "The container exited with an exit code of 3." in condition.message
    assert condition.execution_reason == run_v2.Condition.ExecutionReason.NON_ZERO_EXIT_CODE


def test_unset_max_retries_is_googles_three(cloud_run_emulator: Emulator) -> None:
    job = python_job("import sys; sys.exit(1)")
    del job.template.template.max_retries
    execution = run(cloud_run_emulator, job)
    assert (execution.failed_count, execution.retried_count) == (1, 3)


def test_task_output_goes_to_the_log_uri(cloud_run_emulator: Emulator) -> None:
    execution = run(cloud_run_emulator, python_job("print('hello from the task')"))
    log_dir = Path(execution.log_uri.removeprefix("file://"))
    assert "hello from the task" in (log_dir / "task-0-attempt-0.log").read_text()


def test_a_container_without_a_command_fails_in_process_mode(cloud_run_emulator: Emulator) -> None:
    job = run_v2.Job(template={"template": {"containers": [{"image": "x"}], "max_retries": 0}})
    execution = run(cloud_run_emulator, job)
    assert execution.failed_count == 1
    assert "has no command" in completed(execution).message


def test_cancel_kills_the_running_task(cloud_run_emulator: Emulator, tmp_path: Path) -> None:
    # The task starts a child of its own: both must go.
    code = (
        "import os, subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
        "open(os.environ['OUT'] + '/pids', 'w').write(f'{os.getpid()} {child.pid}'); time.sleep(600)"
    )
    jobs, executions = cloud_run_emulator.jobs(), cloud_run_emulator.executions()
    where = f"projects/cancel-{uuid.uuid4().hex[:8]}/locations/{REGION}"
    job = python_job(code, container={"env": env_of(tmp_path)})
    created = jobs.create_job(parent=where, job_id="hung", job=job).result(timeout=30)
    operation = jobs.run_job(name=created.name)
    pids_file = tmp_path / "pids"
    wait_for(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2, 30, "the task")
    pids = [int(pid) for pid in pids_file.read_text().split()]
    assert all(psutil.pid_exists(pid) for pid in pids)

    executions.cancel_execution(name=operation.metadata.name).result(timeout=30)
    execution = executions.get_execution(name=operation.metadata.name)
    assert (execution.cancelled_count, execution.running_count) == (1, 0)
    condition = completed(execution)
    assert condition.execution_reason == run_v2.Condition.ExecutionReason.CANCELLED
    wait_for(lambda: not any(_alive(pid) for pid in pids), 15, "the task's processes to go")
    latest = jobs.get_job(name=created.name).latest_created_execution
    assert (
        latest.completion_status == run_v2.ExecutionReference.CompletionStatus.EXECUTION_CANCELLED
    )


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_never_starting_container_stays_pending_until_cancelled(
    cloud_run_emulator: Emulator, tmp_path: Path
) -> None:
    jobs, executions = cloud_run_emulator.jobs(), cloud_run_emulator.executions()
    where = f"projects/pending-{uuid.uuid4().hex[:8]}/locations/{REGION}"
    cloud_run_emulator.fault(never_start=True, project=where.split("/")[1])
    job = python_job(
        "import os; open(os.environ['OUT'] + '/ran', 'w')", container={"env": env_of(tmp_path)}
    )
    created = jobs.create_job(parent=where, job_id="stuck", job=job).result(timeout=30)
    operation = jobs.run_job(name=created.name)
    # Given a second to run, it has not started (a normal task finishes in well under that).
    assert not cloud_run_emulator.wait_operation(operation.operation.name, seconds=1)["done"]
    pending = executions.get_execution(name=operation.metadata.name)
    assert (pending.running_count, pending.succeeded_count) == (0, 0)
    assert not pending.start_time and pending.reconciling
    executions.cancel_execution(name=pending.name).result(timeout=30)
    assert executions.get_execution(name=pending.name).cancelled_count == 1
    assert not (tmp_path / "ran").exists()
    # The fault was for one execution: the next one runs.
    assert jobs.run_job(name=created.name).result(timeout=60).succeeded_count == 1
    assert (tmp_path / "ran").exists()


def test_deleting_a_job_stops_its_running_execution(
    cloud_run_emulator: Emulator, tmp_path: Path
) -> None:
    code = "import os, time; open(os.environ['OUT'] + '/pid', 'w').write(str(os.getpid())); time.sleep(600)"
    jobs = cloud_run_emulator.jobs()
    where = f"projects/delete-{uuid.uuid4().hex[:8]}/locations/{REGION}"
    job = python_job(code, container={"env": env_of(tmp_path)})
    created = jobs.create_job(parent=where, job_id="doomed", job=job).result(timeout=30)
    jobs.run_job(name=created.name)
    wait_for(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text(), 30, "the task")
    jobs.delete_job(name=created.name).result(timeout=60)
    pid = int((tmp_path / "pid").read_text())
    wait_for(lambda: not _alive(pid), 15, "the task to be killed")


def test_a_run_token_job_is_ready_once_its_execution_completed(
    cloud_run_emulator: Emulator, tmp_path: Path
) -> None:
    jobs = cloud_run_emulator.jobs()
    where = f"projects/run-token-{uuid.uuid4().hex[:8]}/locations/{REGION}"
    gate = tmp_path / "go"
    code = f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)"
    job = python_job(code)
    job.run_execution_token = "t1"
    created = jobs.create_job(parent=where, job_id="gated", job=job).result(timeout=30)
    assert created.terminal_condition.state == State.CONDITION_RECONCILING
    gate.touch()
    cloud_run_emulator.wait_done(f"{created.name}/executions/gated-t1")
    ready = jobs.get_job(name=created.name).terminal_condition
    assert (ready.type_, ready.state) == ("Ready", State.CONDITION_SUCCEEDED)


def test_secret_references_and_a_stopping_emulator(tmp_path: Path) -> None:
    sleeper = "import os, time; open(os.environ['OUT'] + '/pid', 'w').write(os.environ['KEY']); time.sleep(600)"
    with Emulator(tmp_path / "emulator", "--secret", "api-key=s3cret", persist=True) as emulator:
        port = emulator.port
        jobs = emulator.jobs()
        where = f"projects/secrets/locations/{REGION}"
        secret_env = {
            "name": "KEY",
            "value_source": {
                "secret_key_ref": {"secret": "projects/p/secrets/api-key", "version": "latest"}
            },
        }
        job = python_job(sleeper, container={"env": [*env_of(tmp_path), secret_env]})
        created = jobs.create_job(parent=where, job_id="secret", job=job).result(timeout=30)
        operation = jobs.run_job(name=created.name)
        wait_for(
            lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text(), 30, "the task"
        )
        assert (tmp_path / "pid").read_text() == "s3cret"

        unknown = python_job(
            "pass",
            container={
                "env": [{**secret_env, "value_source": {"secret_key_ref": {"secret": "nope"}}}]
            },
        )
        other = jobs.create_job(parent=where, job_id="no-secret", job=unknown).result(timeout=30)
        with pytest.raises(exceptions.FailedPrecondition, match="Secret 'nope' was not found"):
            jobs.run_job(name=other.name).result(timeout=30)
        task_pids = [p.pid for p in psutil.Process(emulator.process.pid).children(recursive=True)]
        assert task_pids
    # Stopping the emulator killed the task; restarted, the execution reads as failed.
    wait_for(lambda: not any(_alive(pid) for pid in task_pids), 15, "the task to go")
    with Emulator(tmp_path / "emulator", port=port, persist=True) as emulator:
        execution = emulator.executions().get_execution(name=operation.metadata.name)
        assert execution.completion_time
        assert completed(execution).state == State.CONDITION_FAILED


def test_a_finished_execution_can_be_deleted_and_its_job_stays(
    cloud_run_emulator: Emulator,
) -> None:
    jobs, executions = cloud_run_emulator.jobs(), cloud_run_emulator.executions()
    where = f"projects/exec-delete-{uuid.uuid4().hex[:8]}/locations/{REGION}"
    created = jobs.create_job(parent=where, job_id="keep", job=python_job("pass")).result(
        timeout=30
    )
    assert created.launch_stage == launch_stage_pb2.LaunchStage.GA  # Google's default
    first = jobs.run_job(name=created.name).result(timeout=60)
    second = jobs.run_job(name=created.name).result(timeout=60)
    deleted = executions.delete_execution(name=first.name).result(timeout=30)
    assert deleted.name == first.name
    with pytest.raises(exceptions.NotFound):
        executions.get_execution(name=first.name)
    remaining = list(executions.list_executions(parent=created.name))
    assert [e.name for e in remaining] == [second.name]
    assert completed(remaining[0]).state == State.CONDITION_SUCCEEDED
