"""The Cloud Run emulator's credential checks (a service-account key) and its faults."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import httpx
import pytest
import requests
from google.api_core import exceptions
from google.oauth2 import credentials as oauth2_credentials
from google.oauth2 import service_account

from cloud_run_emulator import (
    PARENT,
    REGION,
    Emulator,
    cloud_run_emulator,
    python_job,
    service_account_key,
)
from processes import free_port

__all__ = ["cloud_run_emulator"]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, dict[str, Any]]]:
    """An emulator checking callers against a fresh key whose token_uri points at it."""
    work = tmp_path_factory.mktemp("keyed-emulator")
    port = free_port()
    info = service_account_key(work / "key.json", f"http://127.0.0.1:{port}/token")
    with Emulator(work, "--service-account-key", str(work / "key.json"), port=port) as emulator:
        yield emulator, info


def test_calls_without_a_credential_are_refused(keyed: tuple[Emulator, dict[str, Any]]) -> None:
    emulator, _ = keyed
    # Told 401, Google's client tries to refresh the credentials, which anonymous ones cannot.
    with pytest.raises(google.auth.exceptions.InvalidOperation):
        emulator.jobs().get_job(name=f"{PARENT}/jobs/anything")
    assert httpx.get(f"{emulator.url}/v2/{PARENT}/jobs").status_code == 401
    response = httpx.get(
        f"{emulator.url}/v2/{PARENT}/jobs", headers={"Authorization": "Bearer made-up"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_a_self_signed_jwt_of_the_key_is_accepted(keyed: tuple[Emulator, dict[str, Any]]) -> None:
    emulator, info = keyed
    credentials = service_account.Credentials.from_service_account_info(info)
    jobs = emulator.jobs(credentials)
    created = jobs.create_job(parent=PARENT, job_id="signed", job=python_job("pass"))
    assert created.result(timeout=30).name == f"{PARENT}/jobs/signed"
    # The client signed its own JWT: it never asked the token endpoint.
    assert jobs.get_job(name=f"{PARENT}/jobs/signed").name.endswith("/signed")


def test_the_token_endpoint_issues_tokens_the_api_accepts(
    keyed: tuple[Emulator, dict[str, Any]],
) -> None:
    emulator, info = keyed
    credentials = service_account.Credentials.from_service_account_info(
        info, scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    credentials.refresh(google.auth.transport.requests.Request())
    assert credentials.token and credentials.token.startswith("emu.")
    jobs = emulator.jobs(oauth2_credentials.Credentials(credentials.token))
    assert list(jobs.list_jobs(parent=f"projects/tokens/locations/{REGION}")) == []


def test_a_jwt_signed_by_another_key_is_refused(
    keyed: tuple[Emulator, dict[str, Any]], tmp_path: Path
) -> None:
    emulator, info = keyed
    other = service_account_key(tmp_path / "other.json", info["token_uri"], info["client_email"])
    with pytest.raises(exceptions.Unauthorized):
        emulator.jobs(service_account.Credentials.from_service_account_info(other)).get_job(
            name=f"{PARENT}/jobs/signed"
        )
    response = httpx.post(
        info["token_uri"],
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x.y.z"},
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def project() -> tuple[str, str]:
    """A fresh project id and its parent: the faults posted for it meet only its calls."""
    project_id = f"faults-{uuid.uuid4().hex[:8]}"
    return project_id, f"projects/{project_id}/locations/{REGION}"


def test_status_faults_answer_the_next_calls_then_stop(cloud_run_emulator: Emulator) -> None:
    jobs, (project_id, where) = cloud_run_emulator.jobs(), project()
    cloud_run_emulator.fault(method="jobs.create", count=2, status=429, project=project_id)
    cloud_run_emulator.fault(method="jobs.create", status=503, project=project_id)
    before = cloud_run_emulator.calls().get("jobs.create", 0)
    for error in (
        exceptions.TooManyRequests,
        exceptions.TooManyRequests,
        exceptions.ServiceUnavailable,
    ):
        with pytest.raises(error):
            jobs.create_job(parent=where, job_id="flaky", job=python_job("pass"), retry=None)
    # Nothing was created by the faulted calls: the next create succeeds.
    jobs.create_job(parent=where, job_id="flaky", job=python_job("pass")).result(timeout=30)
    assert cloud_run_emulator.calls()["jobs.create"] == before + 4


def test_a_dropped_reply_after_the_create_leaves_the_job_created(
    cloud_run_emulator: Emulator,
) -> None:
    jobs, (project_id, where) = cloud_run_emulator.jobs(), project()
    cloud_run_emulator.fault(method="jobs.create", drop=True, project=project_id)
    job = python_job("pass")
    job.start_execution_token = "once"
    with pytest.raises(requests.exceptions.ConnectionError):
        jobs.create_job(parent=where, job_id="lost-reply", job=job, retry=None)
    # The create happened: a retry is 409 and the job has exactly one execution.
    with pytest.raises(exceptions.Conflict):
        jobs.create_job(parent=where, job_id="lost-reply", job=job, retry=None)
    assert jobs.get_job(name=f"{where}/jobs/lost-reply").execution_count == 1


def test_a_drop_before_handling_does_nothing(cloud_run_emulator: Emulator) -> None:
    jobs, (project_id, where) = cloud_run_emulator.jobs(), project()
    cloud_run_emulator.fault(method="jobs.create", drop="before", project=project_id)
    with pytest.raises(requests.exceptions.ConnectionError):
        jobs.create_job(parent=where, job_id="never", job=python_job("pass"), retry=None)
    with pytest.raises(exceptions.NotFound):
        jobs.get_job(name=f"{where}/jobs/never")


def test_bad_faults_are_refused_and_faults_can_be_cleared(cloud_run_emulator: Emulator) -> None:
    url = f"{cloud_run_emulator.url}/_emulator/faults"
    for fault in ({"method": "jobs.creat", "status": 429}, {"method": "jobs.get"}, {"x": 1}):
        response = httpx.post(url, json=fault)
        assert response.status_code == 400, fault
    cloud_run_emulator.fault(method="operations.get", count=5, status=500)
    assert json.loads(httpx.get(url).text)["faults"][0]["count"] == 5
    cloud_run_emulator.clear_faults()
    assert httpx.get(url).json() == {"faults": []}
