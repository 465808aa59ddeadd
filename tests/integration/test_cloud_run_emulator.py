"""The Cloud Run emulator's jobs API, driven by Google's own client (REST transport).

Each test uses its own project name, so tests sharing the session's emulator never
see each other's jobs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from cloud_run_emulator import REGION, Emulator, cloud_run_emulator, python_job
from processes import SKYRUN
from skyrun.integrations.gcp.emulator.config import PASS_THROUGH_ENV

__all__ = ["cloud_run_emulator"]

WRITE_ENV = (
    "import json, os, sys; "
    "open(os.path.join(os.environ['OUT'], os.environ['CLOUD_RUN_TASK_INDEX'] + '.json'), 'w')"
    ".write(json.dumps({'env': dict(os.environ), 'argv': sys.argv[1:], 'cwd': os.getcwd()}))"
)


def parent() -> str:
    return f"projects/p-{uuid.uuid4().hex[:10]}/locations/{REGION}"


def test_a_start_token_starts_one_execution_exactly_once(
    cloud_run_emulator: Emulator, tmp_path: Path
) -> None:
    jobs, executions = cloud_run_emulator.jobs(), cloud_run_emulator.executions()
    job = python_job(WRITE_ENV, container={"env": [{"name": "OUT", "value": str(tmp_path)}]})
    job.start_execution_token = "tok1"
    where = parent()
    created = jobs.create_job(parent=where, job_id="run-1", job=job).result(timeout=30)
    assert created.terminal_condition.type_ == "Ready"

    # The reply was "lost": the same create again is refused and starts nothing.
    with pytest.raises(exceptions.Conflict):
        jobs.create_job(parent=where, job_id="run-1", job=job)

    listed = list(executions.list_executions(parent=created.name))
    assert [e.name.rsplit("/", 1)[-1] for e in listed] == ["run-1-tok1"]
    assert jobs.get_job(name=created.name).execution_count == 1
    cloud_run_emulator.wait_done(listed[0].name)
    assert [p.name for p in tmp_path.iterdir()] == ["0.json"]
    # Without a workingDir, each attempt starts in a scratch directory, removed after it.
    cwd = Path(json.loads((tmp_path / "0.json").read_text())["cwd"])
    assert cwd.parent.parent.name == "tasks" and not cwd.exists()
    assert jobs.get_job(name=created.name).terminal_condition.state == (
        run_v2.Condition.State.CONDITION_SUCCEEDED
    )


def test_run_with_overrides_sets_args_env_task_count_and_cloud_run_variables(
    cloud_run_emulator: Emulator, tmp_path: Path
) -> None:
    jobs = cloud_run_emulator.jobs()
    job = python_job(
        WRITE_ENV,
        container={
            "args": ["from-job"],
            "env": [{"name": "OUT", "value": str(tmp_path)}, {"name": "KEPT", "value": "job"}],
            "working_dir": str(tmp_path),
        },
    )
    created = jobs.create_job(parent=parent(), job_id="overrides", job=job).result(timeout=30)
    overrides = run_v2.RunJobRequest.Overrides(
        container_overrides=[
            {
                "args": ["a", "b"],
                "env": [{"name": "KEPT", "value": "override"}, {"name": "NEW", "value": "1"}],
            }
        ],
        task_count=2,
        timeout="30s",
    )
    operation = jobs.run_job(request={"name": created.name, "overrides": overrides})
    execution_name = operation.metadata.name
    execution = operation.result(timeout=60)
    assert execution.name == execution_name
    assert (execution.task_count, execution.succeeded_count, execution.failed_count) == (2, 2, 0)
    assert execution.template.timeout.total_seconds() == 30
    runs = {int(p.stem): json.loads(p.read_text()) for p in tmp_path.iterdir()}
    assert sorted(runs) == [0, 1]
    for index, run in runs.items():
        env = run["env"]
        assert run["argv"] == ["a", "b"]
        assert (env["KEPT"], env["NEW"]) == ("override", "1")
        assert env["CLOUD_RUN_JOB"] == "overrides"
        assert env["CLOUD_RUN_EXECUTION"] == execution_name.rsplit("/", 1)[-1]
        assert (env["CLOUD_RUN_TASK_INDEX"], env["CLOUD_RUN_TASK_ATTEMPT"]) == (str(index), "0")
        assert env["CLOUD_RUN_TASK_COUNT"] == "2"
        # Only the container's env, Cloud Run's variables and what any container has
        # (LC_CTYPE: Python's own locale coercion): nothing else of the host leaks in.
        expected = {"OUT", "KEPT", "NEW", "LC_CTYPE", *PASS_THROUGH_ENV}
        assert {name for name in env if not name.startswith("CLOUD_RUN_")} <= expected
        assert run["cwd"] == str(tmp_path)  # the container's workingDir
    # clearArgs drops the job's args.
    cleared = jobs.run_job(
        request={
            "name": created.name,
            "overrides": {"container_overrides": [{"clear_args": True}], "task_count": 1},
        }
    ).result(timeout=60)
    assert cleared.succeeded_count == 1
    assert json.loads((tmp_path / "0.json").read_text())["argv"] == []
    latest = jobs.get_job(name=created.name).latest_created_execution
    assert latest.name == cleared.name
    assert (
        latest.completion_status == run_v2.ExecutionReference.CompletionStatus.EXECUTION_SUCCEEDED
    )


def test_get_list_pages_patch_and_delete(cloud_run_emulator: Emulator) -> None:
    jobs = cloud_run_emulator.jobs()
    where = parent()
    for index in range(5):
        jobs.create_job(parent=where, job_id=f"job-{index}", job=python_job("pass")).result(
            timeout=30
        )
    pager = jobs.list_jobs(request={"parent": where, "page_size": 2})
    pages = [[job.name.rsplit("/", 1)[-1] for job in page.jobs] for page in pager.pages]
    assert pages == [["job-0", "job-1"], ["job-2", "job-3"], ["job-4"]]

    job = jobs.get_job(name=f"{where}/jobs/job-0")
    job.template.template.containers[0].args = ["changed"]
    job.labels = {"skyrun-flow-run": "abc"}
    updated = jobs.update_job(job=job).result(timeout=30)
    assert list(updated.template.template.containers[0].args) == ["changed"]
    assert (updated.labels["skyrun-flow-run"], updated.generation) == ("abc", 2)

    deleted = jobs.delete_job(name=job.name).result(timeout=30)
    assert deleted.name == job.name
    with pytest.raises(exceptions.NotFound):
        jobs.get_job(name=job.name)
    assert len(list(jobs.list_jobs(parent=where))) == 4


def test_validate_only_creates_nothing(cloud_run_emulator: Emulator) -> None:
    jobs, where = cloud_run_emulator.jobs(), parent()
    checked = jobs.create_job(
        request={"parent": where, "job_id": "dry", "job": python_job("pass"), "validate_only": True}
    ).result(timeout=30)
    assert checked.name == f"{where}/jobs/dry"
    with pytest.raises(exceptions.NotFound):
        jobs.get_job(name=f"{where}/jobs/dry")


def test_misspelt_fields_are_refused_and_enums_may_be_numbers_or_names(
    cloud_run_emulator: Emulator,
) -> None:
    url = f"{cloud_run_emulator.url}/v2/{parent()}/jobs"
    container = {"image": "x", "command": [sys.executable, "-c", "pass"]}
    misspelt = {"template": {"tempalte": {"containers": [container]}}}
    response = httpx.post(url, params={"jobId": "bad"}, json=misspelt)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert "tempalte" in error["message"]

    for job_id, stage, environment in (
        ("ints", 3, 2),
        ("names", "BETA", "EXECUTION_ENVIRONMENT_GEN2"),
    ):
        body = {
            "launchStage": stage,
            "template": {
                "template": {"containers": [container], "executionEnvironment": environment}
            },
        }
        response = httpx.post(url, params={"jobId": job_id}, json=body)
        assert response.status_code == 200, response.text
        job = response.json()["metadata"]
        assert job["template"]["template"]["executionEnvironment"] == "EXECUTION_ENVIRONMENT_GEN2"
        assert job["launchStage"] in ("BETA", "ALPHA", "GA", "EARLY_ACCESS", "PRELAUNCH")


def test_bad_job_ids_and_templates_are_refused(cloud_run_emulator: Emulator) -> None:
    jobs, where = cloud_run_emulator.jobs(), parent()
    for job_id in ("Upper", "9starts-with-digit", "ends-", "x" * 64):
        with pytest.raises(exceptions.BadRequest, match="jobId"):
            jobs.create_job(parent=where, job_id=job_id, job=python_job("pass"))
    no_image = run_v2.Job(template={"template": {"containers": [{"command": ["true"]}]}})
    with pytest.raises(exceptions.BadRequest, match="image"):
        jobs.create_job(parent=where, job_id="no-image", job=no_image)
    with pytest.raises(exceptions.BadRequest, match="max_retries"):
        jobs.create_job(
            parent=where, job_id="retries", job=python_job("pass", task={"max_retries": 11})
        )


def test_unknown_jobs_and_regions_are_404_and_the_job_limit_holds(tmp_path: Path) -> None:
    with Emulator(tmp_path, "--region", REGION, "--job-limit", "2") as emulator:
        jobs = emulator.jobs()
        where = f"projects/limits/locations/{REGION}"
        with pytest.raises(exceptions.NotFound):
            jobs.get_job(name=f"{where}/jobs/missing")
        with pytest.raises(exceptions.NotFound, match="europe-west1"):
            jobs.create_job(
                parent="projects/limits/locations/europe-west1", job_id="a", job=python_job("pass")
            )
        for job_id in ("a", "b"):
            jobs.create_job(parent=where, job_id=job_id, job=python_job("pass")).result(timeout=30)
        with pytest.raises(exceptions.TooManyRequests, match="at most 2 jobs"):
            jobs.create_job(parent=where, job_id="c", job=python_job("pass"))
        # Another project has its own limit.
        jobs.create_job(
            parent=f"projects/other/locations/{REGION}", job_id="c", job=python_job("pass")
        ).result(timeout=30)
        response = httpx.get(f"{emulator.url}/v2/{where}/jobs/missing")
        assert response.json() == {
            "error": {
                "code": 404,
                "message": f"Resource '{where}/jobs/missing' was not found",
                "status": "NOT_FOUND",
            }
        }


def test_jobs_survive_a_restart_with_a_state_dir(tmp_path: Path) -> None:
    with Emulator(tmp_path, persist=True) as emulator:
        port = emulator.port
        emulator.jobs().create_job(
            parent=f"projects/keep/locations/{REGION}", job_id="kept", job=python_job("pass")
        ).result(timeout=30)
    with Emulator(tmp_path, port=port, persist=True) as emulator:
        job = emulator.jobs().get_job(name=f"projects/keep/locations/{REGION}/jobs/kept")
        assert job.template.template.containers[0].command[0] == sys.executable


def test_the_command_refuses_bad_options_in_one_line(tmp_path: Path) -> None:
    for options, message in (
        (["--execute", "docker"], "--execute is process or image, not 'docker'"),
        (["--service-account-key", str(tmp_path / "nope.json")], "no such file"),
        (["--secret", "novalue"], "--secret takes NAME=VALUE"),
        (["--host", "0.0.0.0"], "refusing to listen on 0.0.0.0 without --service-account-key"),
    ):
        result = subprocess.run(
            [str(SKYRUN), "cloud-run", "emulator", "--port", "0", *options],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_calls_count_by_project_and_finished_executions_outlive_their_job(
    cloud_run_emulator: Emulator,
) -> None:
    jobs = cloud_run_emulator.jobs()
    where = parent()
    project = where.split("/")[1]
    job = python_job("pass")
    job.start_execution_token = "t"
    created = jobs.create_job(parent=where, job_id="timed", job=job).result(timeout=30)
    execution_name = f"{created.name}/executions/timed-t"
    cloud_run_emulator.wait_done(execution_name)
    jobs.delete_job(name=created.name).result(timeout=30)

    # Only this test's project's calls: one create, the waits' gets, one delete.
    calls = cloud_run_emulator.calls(project)
    assert (calls["jobs.create"], calls["jobs.delete"], calls["executions.get"] > 0) == (1, 1, True)
    assert cloud_run_emulator.calls()["jobs.create"] >= calls["jobs.create"]
    assert cloud_run_emulator.calls("no-such-project") == {}
    (record,) = [e for e in cloud_run_emulator.finished() if e["name"] == execution_name]
    created_at, started, completed = (
        datetime.fromisoformat(record[key]) for key in ("createTime", "startTime", "completionTime")
    )
    assert created_at <= started <= completed and record["succeeded"] is True
