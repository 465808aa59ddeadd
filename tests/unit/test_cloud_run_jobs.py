"""Unit tests of the cloud-run worker's pure parts: its template, job names, labels, the Job
message built from a rendered configuration, and what an execution's fields say."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api import launch_stage_pb2
from google.cloud import run_v2
from google.protobuf import timestamp_pb2

from skyrun.integrations.gcp.executions import (
    execution_outcome,
    job_start_failure,
    left_from_earlier_attempt,
)
from skyrun.integrations.gcp.job_template import CLOUD_RUN_JOB_TEMPLATE
from skyrun.integrations.gcp.jobs import (
    LABEL_FLOW_RUN,
    build_job,
    execution_token_for,
    job_id_for,
    label_key,
    label_value,
)
from skyrun.jobs.templates import JobTemplateError, prepare_job, validate_base_job_template
from skyrun.jobs.types import type_job_template
from skyrun.workers.base import InfrastructureError

JOB_ID = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
RUN_ID = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
Condition = run_v2.Condition
State = run_v2.Condition.State


def rendered(**job_variables: Any) -> dict[str, Any]:
    return prepare_job(
        CLOUD_RUN_JOB_TEMPLATE,
        {"image": "us-docker.pkg.dev/p/r/flows:1", **job_variables},
        None,
        env={},
        skyrun_variables=None,
    )


def make_job(config: dict[str, Any], env: dict[str, str] | None = None) -> run_v2.Job:
    return build_job(
        config,
        env or {"SKYRUN_FLOW_RUN_ID": str(RUN_ID)},
        flow_run_id=RUN_ID,
        deployment_id=None,
        work_pool_id=None,
    )


def test_the_template_is_valid_has_every_variable_described_and_is_the_types_default() -> None:
    assert validate_base_job_template(CLOUD_RUN_JOB_TEMPLATE) == []
    assert type_job_template("cloud-run") == CLOUD_RUN_JOB_TEMPLATE
    properties = CLOUD_RUN_JOB_TEMPLATE["variables"]["properties"]
    expected = {
        "region", "credentials", "image", "cpu", "memory", "service_account_name",
        "vpc_connector_name", "network", "subnetwork", "gpu_type", "gpu_count", "timeout",
        "max_retries", "keep_job", "env", "env_from_secrets", "api_key_secret", "labels",
        "command", "args", "launch_stage", "api_endpoint",
    }  # fmt: skip
    assert set(properties) == expected
    for name, schema in properties.items():
        assert schema.get("title") and schema.get("description"), name
    assert properties["credentials"]["block_type"] == "gcp-credentials"
    defaults = rendered()
    assert defaults["region"] == "us-central1"
    assert (defaults["cpu"], defaults["memory"], defaults["max_retries"]) == ("1000m", "512Mi", 0)
    assert defaults["api_endpoint"] == "https://run.googleapis.com"
    assert defaults["keep_job"] is False


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"timeout": 7 * 24 * 3600 + 1}, "timeout"),
        ({"max_retries": 11}, "max_retries"),
        ({"memory": "lots"}, "memory"),
        ({"labels": {"Team": "a"}}, "labels"),
        ({"launch_stage": "PREVIEW"}, "launch_stage"),
        ({"api_key_secret": {"version": "1"}}, "api_key_secret"),
        ({"api_endpoint": "run.googleapis.com"}, "api_endpoint"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(variables: dict[str, Any], named: str) -> None:
    with pytest.raises(JobTemplateError, match=named):
        rendered(**variables)


@pytest.mark.parametrize(
    "name",
    [
        "sparkling-otter",
        "UPPER case_and spaces!!",
        "123-starts-with-digits",
        "---",
        "",
        "x" * 200,
        "ünïcödé-nämé",
    ],
)
def test_job_ids_are_valid_short_and_leave_room_for_the_token(name: str) -> None:
    job_id = job_id_for(name, RUN_ID)
    assert JOB_ID.match(job_id), job_id
    assert len(job_id) + len(execution_token_for(RUN_ID)) < 63
    assert job_id.endswith(RUN_ID.hex[:12])


def test_job_ids_differ_between_runs_of_the_same_name() -> None:
    ids = {job_id_for("same-name", uuid.uuid4()) for _ in range(200)}
    assert len(ids) == 200
    assert job_id_for("Sparkling Otter", RUN_ID) == "sparkling-otter-" + RUN_ID.hex[:12]


def test_labels_are_sanitised_and_skyruns_own_win() -> None:
    assert label_value("Team A/B" + "x" * 100) == ("team-a-b" + "x" * 100)[:63]
    assert label_key("9lives") == "x-9lives"
    assert label_key("") == "x-"
    pool_id, deployment_id = uuid.uuid4(), uuid.uuid4()
    job = build_job(
        rendered(labels={"team": "data", LABEL_FLOW_RUN: "spoofed"}, keep_job=True),
        {},
        flow_run_id=RUN_ID,
        deployment_id=deployment_id,
        work_pool_id=pool_id,
    )
    assert dict(job.labels) == {
        "team": "data",
        "managed-by": "skyrun",
        "skyrun-flow-run-id": str(RUN_ID),
        "skyrun-deployment-id": str(deployment_id),
        "skyrun-work-pool-id": str(pool_id),
        "skyrun-keep-job": "true",
    }
    for key, value in job.labels.items():
        assert re.match(r"^[a-z][a-z0-9_-]{0,62}$", key) and len(value) <= 63


def test_the_job_message_from_a_default_configuration() -> None:
    env = {"SKYRUN_API_URL": "http://api/api", "SKYRUN_FLOW_RUN_ID": str(RUN_ID)}
    job = make_job(rendered(), env)
    assert job.start_execution_token == execution_token_for(RUN_ID)
    assert job.launch_stage == launch_stage_pb2.LaunchStage.GA
    assert job.template.task_count == 1
    task = job.template.template
    assert task.max_retries == 0  # Google's default of 3 would re-run failed flows
    assert task.timeout.total_seconds() == 3600
    assert not task.service_account and not task.vpc_access.connector
    assert not task.node_selector.accelerator
    (container,) = task.containers
    assert container.image == "us-docker.pkg.dev/p/r/flows:1"
    assert list(container.command) == ["skyrun", "flow-run", "execute"]
    assert list(container.args) == []
    assert {e.name: e.value for e in container.env} == env
    assert dict(container.resources.limits) == {"cpu": "1000m", "memory": "512Mi"}
    # What Google's client sends is accepted by its own message types.
    assert run_v2.Job.deserialize(run_v2.Job.serialize(job)) == job


def test_every_variable_reaches_the_job_message() -> None:
    config = rendered(
        cpu="2",
        memory="4Gi",
        service_account_name="flows@p.iam.gserviceaccount.com",
        network="default",
        subnetwork="flows",
        gpu_type="nvidia-l4",
        gpu_count=1,
        timeout=7 * 24 * 3600,
        max_retries=2,
        env={"A": "1", "DROPPED": None},
        env_from_secrets={"DB_PASSWORD": {"secret": "db-password", "version": "3"}},
        api_key_secret={"secret": "skyrun-api-key"},
        command="python -m flows 'two words'",
        args=["--fast"],
        launch_stage="BETA",
    )
    job = make_job(config, {"SKYRUN_API_KEY": "plain", "A": "1"})
    task = job.template.template
    assert task.service_account == "flows@p.iam.gserviceaccount.com"
    (interface,) = task.vpc_access.network_interfaces
    assert (interface.network, interface.subnetwork) == ("default", "flows")
    assert task.node_selector.accelerator == "nvidia-l4"
    assert task.timeout.total_seconds() == 604800 and task.max_retries == 2
    assert job.launch_stage == launch_stage_pb2.LaunchStage.BETA
    (container,) = task.containers
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert (container.resources.limits["cpu"], container.resources.limits["memory"]) == ("2", "4Gi")
    assert list(container.command) == ["python", "-m", "flows", "two words"]
    assert list(container.args) == ["--fast"]
    env = {e.name: e for e in container.env}
    assert env["A"].value == "1"
    # With api_key_secret the key is a Secret Manager reference, never the plain value.
    assert env["SKYRUN_API_KEY"].value == ""
    key_ref = env["SKYRUN_API_KEY"].value_source.secret_key_ref
    assert (key_ref.secret, key_ref.version) == ("skyrun-api-key", "latest")
    db_ref = env["DB_PASSWORD"].value_source.secret_key_ref
    assert (db_ref.secret, db_ref.version) == ("db-password", "3")


def test_a_vpc_connector_is_used_alone() -> None:
    job = make_job(rendered(vpc_connector_name="projects/p/locations/r/connectors/c"))
    assert job.template.template.vpc_access.connector == "projects/p/locations/r/connectors/c"
    with pytest.raises(InfrastructureError, match="vpc_connector_name or network"):
        make_job(rendered(vpc_connector_name="c", network="n"))


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"image": None}, "set the 'image' job variable"),
        ({"gpu_type": "nvidia-l4"}, "gpu_type and gpu_count"),
        ({"command": "unterminated 'quote"}, "cannot parse the command"),
    ],
)
def test_configurations_that_cannot_make_a_job_say_why(
    variables: dict[str, Any], message: str
) -> None:
    with pytest.raises(InfrastructureError, match=message):
        make_job(rendered(**variables))


def _timestamp() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def test_execution_outcomes() -> None:
    running = run_v2.Execution(start_time=_timestamp(), running_count=1, task_count=1)
    assert execution_outcome(running) is None
    pending = run_v2.Execution(task_count=1)
    assert execution_outcome(pending) is None

    succeeded = run_v2.Execution(
        completion_time=_timestamp(),
        succeeded_count=1,
        task_count=1,
        conditions=[Condition(type_="Completed", state=State.CONDITION_SUCCEEDED)],
    )
    assert execution_outcome(succeeded) == execution_outcome(succeeded).__class__(exit_code=0)

    timed_out = run_v2.Execution(
        completion_time=_timestamp(),
        failed_count=1,
        task_count=1,
        conditions=[
            Condition(
                type_="Completed",
                state=State.CONDITION_FAILED,
                message="Task j-abc-0 timed out: The configured timeout was reached.",
            )
        ],
    )
    outcome = execution_outcome(timed_out)
    assert outcome is not None and outcome.exit_code == 1
    assert outcome.reason == "Task j-abc-0 timed out: The configured timeout was reached."

    cancelled = run_v2.Execution(
        completion_time=_timestamp(),
        cancelled_count=1,
        conditions=[
            Condition(
                type_="Completed",
                state=State.CONDITION_FAILED,
                execution_reason=Condition.ExecutionReason.CANCELLED,
            )
        ],
    )
    outcome = execution_outcome(cancelled)
    assert outcome is not None and outcome.exit_code is None and "cancelled" in str(outcome.reason)


def test_a_container_that_cannot_start_fails_fast_with_cloud_runs_message() -> None:
    missing = run_v2.Execution(
        task_count=1,
        conditions=[
            Condition(
                type_="ResourcesAvailable",
                state=State.CONDITION_FAILED,
                reason=Condition.CommonReason.CONTAINER_MISSING,
                message="Image 'gcr.io/p/nope' not found.",
            )
        ],
    )
    outcome = execution_outcome(missing)
    assert outcome is not None and outcome.exit_code == 1
    assert outcome.reason == "Image 'gcr.io/p/nope' not found. (CONTAINER_MISSING)"
    job = run_v2.Job(
        terminal_condition=Condition(
            type_="Ready",
            state=State.CONDITION_FAILED,
            reason=Condition.CommonReason.CONTAINER_MISSING,
            message="Image 'gcr.io/p/nope' not found.",
        )
    )
    assert job_start_failure(job) == "Image 'gcr.io/p/nope' not found. (CONTAINER_MISSING)"
    assert job_start_failure(run_v2.Job()) is None


def test_only_a_finished_job_from_well_before_the_claim_is_an_earlier_attempts() -> None:
    created = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(created)

    def job(finished: bool) -> run_v2.Job:
        latest = run_v2.ExecutionReference(name="j/executions/e", create_time=stamp)
        if finished:
            latest.completion_time = stamp
        return run_v2.Job(latest_created_execution=latest)

    later = created + timedelta(minutes=10)
    assert left_from_earlier_attempt(job(finished=True), later)
    assert not left_from_earlier_attempt(job(finished=False), later)  # still running: its own
    assert not left_from_earlier_attempt(job(finished=True), created + timedelta(seconds=30))
    assert not left_from_earlier_attempt(job(finished=True), None)  # not a claim being launched
