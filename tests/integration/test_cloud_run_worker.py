"""The cloud-run worker type against the Cloud Run emulator, through Google's own client.

Each test submits small command jobs (a `python -c` in the emulator's process
mode) for flow runs of an embedded skyrun, and checks what Cloud Run was asked
to do: one execution per run whatever the retries, the outcome of each way an
execution ends, cancellation, and that no job is left behind.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as google_errors
from google.cloud import run_v2

from cloud_run_emulator import Emulator, cloud_run_emulator, service_account_key
from processes import free_port, wait_for
from skyrun.client.client import SkyrunClient, get_client
from skyrun.integrations.gcp.job_template import CLOUD_RUN_JOB_TEMPLATE
from skyrun.integrations.gcp.jobs import LABEL_FLOW_RUN, build_job, execution_token_for, job_id_for
from skyrun.integrations.gcp.worker import CloudRunWorker
from skyrun.jobs.templates import prepare_job
from skyrun.schemas.core import FlowRun
from skyrun.schemas.deployments import DeploymentCreate, DeploymentRunCreate
from skyrun.schemas.states import State, StateType, utcnow
from skyrun.schemas.work_pools import WorkPool, WorkPoolCreate
from skyrun.workers.base import InfrastructureError

__all__ = ["cloud_run_emulator"]  # a fixture, used by name

REGION = "us-central1"


class Harness:
    """An embedded skyrun with a cloud-run pool, a worker of that type, and the emulator."""

    def __init__(self, emulator: Emulator, client: SkyrunClient) -> None:
        self.emulator = emulator
        self.client = client
        self.pool: WorkPool = client.create_work_pool(
            WorkPoolCreate(name="cloud", type="cloud-run", base_job_template=CLOUD_RUN_JOB_TEMPLATE)
        )
        self.deployment = client.upsert_deployment(
            DeploymentCreate(
                flow_name="f", name="d", entrypoint="flows.py:f", work_pool_name=self.pool.name
            )
        )
        self.worker = CloudRunWorker(client)
        self.worker.start_timeout = 20.0
        self.worker.apis.retry_initial = 0.05  # the same backoff, from a shorter first wait
        # A project per test: the session's emulator is shared, its jobs are not.
        self.project = f"p-{uuid.uuid4().hex[:10]}"
        self.parent = f"projects/{self.project}/locations/{REGION}"

    def config(self, script: str = "pass", **variables: Any) -> dict[str, Any]:
        values = {
            "api_endpoint": self.emulator.url,
            "image": "python:3.11-slim",
            "command": [sys.executable, "-c", script],
            "credentials": {"project": self.project},
            **variables,
        }
        return prepare_job(CLOUD_RUN_JOB_TEMPLATE, values, None, env={}, skyrun_variables=None)

    def run(self) -> FlowRun:
        return self.client.create_deployment_run(self.deployment.id, DeploymentRunCreate())

    def submit(self, script: str = "pass", **variables: Any) -> tuple[FlowRun, str]:
        flow_run = self.run()
        env = {"SKYRUN_FLOW_RUN_ID": str(flow_run.id)}
        return flow_run, self.worker.submit(flow_run, self.config(script, **variables), env)

    @property
    def jobs(self) -> run_v2.JobsClient:
        return self.worker.apis.get(self.config())[0].jobs

    @property
    def executions(self) -> run_v2.ExecutionsClient:
        return self.worker.apis.get(self.config())[0].executions

    def job_names(self) -> list[str]:
        return [job.name for job in self.jobs.list_jobs(parent=self.parent)]

    def wait_finished(self, execution_name: str) -> run_v2.Execution:
        return wait_for(
            lambda: (e := self.executions.get_execution(name=execution_name)).completion_time and e,
            60,
            f"{execution_name} to finish",
        )


@pytest.fixture
def harness(sdk_home: Path, cloud_run_emulator: Emulator) -> Iterator[Harness]:
    harness = Harness(cloud_run_emulator, get_client())
    try:
        yield harness
    finally:
        harness.worker.close()


def job_of(execution_name: str) -> str:
    return execution_name.split("/executions/")[0]


def test_a_run_is_one_job_with_one_execution_deleted_after(harness: Harness) -> None:
    flow_run, execution_name = harness.submit("import os; assert os.environ['SKYRUN_FLOW_RUN_ID']")
    job_name = job_of(execution_name)
    job = harness.jobs.get_job(name=job_name)
    assert job.labels[LABEL_FLOW_RUN] == str(flow_run.id)
    assert job.labels["skyrun-work-pool-id"] == str(harness.pool.id)
    assert job.template.template.max_retries == 0
    result = harness.worker.watch(execution_name)
    assert (result.exit_code, result.reason) == (0, None)
    with pytest.raises(google_errors.NotFound):
        harness.jobs.get_job(name=job_name)
    assert harness.emulator.calls().get("jobs.run", 0) == 0  # started by its token alone


def test_throttled_creates_and_a_lost_reply_still_make_exactly_one_execution(
    harness: Harness,
) -> None:
    harness.emulator.fault(project=harness.project, method="jobs.create", count=3, status=429)
    harness.emulator.fault(project=harness.project, method="jobs.create", count=1, status=503)
    harness.emulator.fault(project=harness.project, method="jobs.create", count=1, drop="after")
    before = harness.emulator.calls().get("jobs.create", 0)
    _, execution_name = harness.submit("pass", keep_job=True)
    # 4 refused, 1 created whose reply was lost, 1 answered 409: read back, not re-run.
    assert harness.emulator.calls()["jobs.create"] - before == 6
    harness.worker.watch(execution_name)
    executions = list(harness.executions.list_executions(parent=job_of(execution_name)))
    assert [e.name for e in executions] == [execution_name]
    assert harness.jobs.get_job(name=job_of(execution_name)).execution_count == 1
    harness.jobs.delete_job(name=job_of(execution_name))


def test_a_failing_container_reports_cloud_runs_message(harness: Harness) -> None:
    _, execution_name = harness.submit("import sys; sys.exit(3)")
    result = harness.worker.watch(execution_name)
    assert result.exit_code == 1
    assert result.reason and "exited with an exit code of 3" in result.reason
    assert job_of(execution_name) not in harness.job_names()


def test_a_task_timeout_is_reported_as_such(harness: Harness) -> None:
    _, execution_name = harness.submit("import time; time.sleep(60)", timeout=1)
    result = harness.worker.watch(execution_name)
    assert result.exit_code == 1
    assert result.reason and "timeout" in result.reason.lower()
    assert job_of(execution_name) not in harness.job_names()


def test_a_container_that_never_starts_fails_after_the_start_timeout(harness: Harness) -> None:
    harness.worker.start_timeout = 1.0
    harness.emulator.fault(project=harness.project, never_start=True, count=1)
    _, execution_name = harness.submit()
    result = harness.worker.watch(execution_name)
    assert result.exit_code == 1 and "did not start within 1s" in str(result.reason)
    assert job_of(execution_name) not in harness.job_names()


def test_kill_cancels_the_execution_and_deletes_the_job(harness: Harness) -> None:
    _, execution_name = harness.submit("import time; time.sleep(120)", keep_job=True)
    wait_for(
        lambda: harness.executions.get_execution(name=execution_name).running_count,
        30,
        "the execution to run",
    )
    harness.worker.kill(execution_name, grace_seconds=1)
    execution = harness.executions.get_execution(name=execution_name)
    assert execution.completion_time and execution.cancelled_count == 1
    result = harness.worker.watch(execution_name)
    assert result.exit_code is None and "cancelled" in str(result.reason)
    harness.jobs.delete_job(name=job_of(execution_name))


def test_kill_deletes_the_job_unless_kept(harness: Harness) -> None:
    _, execution_name = harness.submit("import time; time.sleep(120)")
    harness.worker.kill(execution_name, grace_seconds=1)
    assert job_of(execution_name) not in harness.job_names()


def test_the_sweep_deletes_the_pools_finished_jobs_only(harness: Harness) -> None:
    worker = harness.worker
    worker.start(harness.pool, harness.config())
    assert worker.sweeper is not None
    finished, kept, running = (harness.run() for _ in range(3))
    names = {}
    for flow_run, variables in (
        (finished, {}),
        (kept, {"keep_job": True}),
        (running, {"command": [sys.executable, "-c", "import time; time.sleep(120)"]}),
    ):
        # Submitted by another worker (that stopped): this worker does not watch them.
        other = CloudRunWorker(harness.client)
        config = harness.config(**variables)
        names[flow_run.id] = other.submit(flow_run, config, {})
    # A finished job of another pool: not this worker's to sweep.
    stranger = harness.run()
    job = build_job(
        harness.config(), {}, flow_run_id=stranger.id, deployment_id=None, work_pool_id=uuid.uuid4()
    )
    stranger_id = job_id_for(stranger.name, stranger.id)
    stranger_job = f"{harness.parent}/jobs/{stranger_id}"
    harness.jobs.create_job(parent=harness.parent, job=job, job_id=stranger_id)
    token = execution_token_for(stranger.id)
    for execution in (
        names[finished.id],
        names[kept.id],
        f"{stranger_job}/executions/{stranger_id}-{token}",
    ):
        harness.wait_finished(execution)
    assert worker.sweeper.sweep() == 0  # just finished: left to whoever watches them
    worker.sweeper.min_age_seconds = 0  # as if they had finished minutes ago
    assert worker.sweeper.sweep() == 1
    left = set(harness.job_names())
    assert job_of(names[finished.id]) not in left
    assert {job_of(names[kept.id]), job_of(names[running.id])} <= left
    assert stranger_job in left
    # A restarted worker finds the running one by its labels and can watch it.
    restarted = CloudRunWorker(harness.client)
    found = restarted.start(harness.pool, harness.config())
    restarted.close()
    assert found == {running.id: names[running.id]}
    harness.executions.cancel_execution(name=names[running.id])
    for flow_run in (kept, running):
        harness.wait_finished(names[flow_run.id])
        harness.jobs.delete_job(name=job_of(names[flow_run.id]))
    harness.jobs.delete_job(name=stranger_job)


def test_a_missing_region_is_a_clear_error(harness: Harness) -> None:
    flow_run = harness.run()
    config = harness.config(region="mars-north1")
    with pytest.raises(Exception, match="region") as caught:
        harness.worker.submit(flow_run, config, {})
    assert "mars-north1" in str(caught.value)


def test_a_service_account_key_authenticates_and_a_wrong_one_is_refused(
    sdk_home: Path, tmp_path: Path
) -> None:
    port = free_port()
    key = service_account_key(tmp_path / "key.json", f"http://127.0.0.1:{port}/token")
    other = service_account_key(tmp_path / "other.json", f"http://127.0.0.1:{port}/token")
    with Emulator(
        tmp_path / "emulator", "--service-account-key", str(tmp_path / "key.json"), port=port
    ) as emulator:
        harness = Harness(emulator, get_client())
        try:
            flow_run = harness.run()
            config = harness.config(credentials={"service_account_info": key})
            execution_name = harness.worker.submit(flow_run, config, {})
            assert execution_name.startswith(f"projects/{key['project_id']}/locations/")
            assert harness.worker.watch(execution_name).exit_code == 0
            config = harness.config(credentials={"service_account_info": json.dumps(other)})
            with pytest.raises(
                InfrastructureError,
                match=r"Cloud Run refused job .*HTTP 401.*check the pool.s credentials",
            ):
                harness.worker.submit(harness.run(), config, {})
        finally:
            harness.worker.close()


def test_a_plain_api_key_is_warned_about_once_per_pool_and_a_secret_keeps_it_out(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"SKYRUN_API_URL": "http://127.0.0.1:1/api", "SKYRUN_API_KEY": "sk-plain"}
    caplog.set_level(logging.WARNING, logger="skyrun.worker.cloud_run")
    names = []
    for variables in ({}, {}, {"api_key_secret": {"secret": "skyrun-key", "version": "2"}}):
        flow_run = harness.run()
        config = harness.config(keep_job=True, **variables)
        names.append(
            harness.worker.submit(flow_run, config, {**env, "SKYRUN_FLOW_RUN_ID": str(flow_run.id)})
        )
    warnings = [r.getMessage() for r in caplog.records if "plain text" in r.getMessage()]
    assert len(warnings) == 1 and "api_key_secret" in warnings[0]
    plain, _, secret = (harness.jobs.get_job(name=job_of(n)) for n in names)
    (container,) = plain.template.template.containers
    assert {e.name: e.value for e in container.env}["SKYRUN_API_KEY"] == "sk-plain"
    (container,) = secret.template.template.containers
    [key] = [e for e in container.env if e.name == "SKYRUN_API_KEY"]
    assert key.value == "" and key.value_source.secret_key_ref.secret == "skyrun-key"
    for name in names:
        harness.wait_finished(name)
        harness.jobs.delete_job(name=job_of(name))


def test_a_missing_image_fails_fast_with_cloud_runs_message_and_leaves_no_job(
    sdk_home: Path, tmp_path: Path
) -> None:
    # Image mode pulls the job's image with buildah: from a registry that is not there.
    with Emulator(tmp_path / "emulator", "--execute", "image") as emulator:
        harness = Harness(emulator, get_client())
        try:
            missing = f"127.0.0.1:{free_port()}/flows/missing:1"
            try:
                _, execution_name = harness.submit(image=missing, command=None)
            except InfrastructureError as exc:  # the job failed before its execution existed
                message = str(exc)
            else:
                result = harness.worker.watch(execution_name)
                assert result.exit_code == 1
                message = str(result.reason)
            assert f"Image '{missing}' not found" in message
            assert harness.job_names() == []
        finally:
            harness.worker.close()


def test_a_run_claimed_again_replaces_its_finished_earlier_job_but_never_its_own(
    harness: Harness,
) -> None:
    flow_run, first = harness.submit("pass", keep_job=True)
    harness.worker.watch(first)
    created = harness.executions.get_execution(name=first).create_time
    config = harness.config("pass", keep_job=True)

    def claimed(after: timedelta) -> FlowRun:
        pending = State(type=StateType.PENDING, name="Pending", timestamp=utcnow() + after)
        return flow_run.model_copy(update={"state": pending})

    # Claimed just now: the finished execution may be this claim's own (a lost reply).
    again = harness.worker.submit(claimed(timedelta(0)), config, {})
    assert again == first
    assert harness.executions.get_execution(name=again).create_time == created
    # Claimed well after it ran (the run was rescheduled): a new job, one new execution.
    later = harness.worker.submit(claimed(timedelta(minutes=5)), config, {})
    assert harness.worker.watch(later).exit_code == 0
    execution = harness.executions.get_execution(name=later)
    assert execution.create_time > created
    assert harness.jobs.get_job(name=job_of(later)).execution_count == 1
    harness.jobs.delete_job(name=job_of(later))
