"""The Cloud Run Admin API v2 calls the worker makes, each retried on transient failures.

Google's own client (`google-cloud-run`, REST transport) makes every call;
its built-in retries are turned off (`retry=None`) so that one policy, skyrun's
(`skyrun.retries`), decides: 429, 5xx and connection errors are retried with
backoff and jitter, honouring Retry-After, for up to `retry_seconds`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import google.auth.exceptions
import requests
from google.api_core import exceptions as google_errors
from google.api_core.client_options import ClientOptions
from google.cloud import run_v2

from skyrun.integrations.gcp.credentials import CredentialsError, gcp_auth
from skyrun.retries import retry_call
from skyrun.workers.base import InfrastructureError

logger = logging.getLogger("skyrun.worker.cloud_run")

T = TypeVar("T")

# Seconds one HTTP call may take before it counts as failed (and is retried).
CALL_TIMEOUT = 30.0
# How long a call is retried before the failure is reported.
RETRY_SECONDS = 120.0

_TRANSIENT = (
    google_errors.TooManyRequests,
    google_errors.InternalServerError,
    google_errors.BadGateway,
    google_errors.ServiceUnavailable,
    google_errors.GatewayTimeout,
    google_errors.RetryError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    google.auth.exceptions.TransportError,
    ConnectionError,
)


def is_transient(error: BaseException) -> bool:
    """Whether a failed call is worth repeating: quota, server trouble, a lost connection."""
    return isinstance(error, _TRANSIENT)


def describe(error: google_errors.GoogleAPICallError) -> str:
    """Cloud Run's answer without the request URL: "HTTP 404 NOT_FOUND: Location ... not found"."""
    status = ""
    if error.grpc_status_code is not None:
        status = f" {error.grpc_status_code.name}"
    return f"HTTP {error.code}{status}: {error.message}"


def _with_retry_after(error: BaseException) -> None:
    """Copy an HTTP Retry-After header onto the error, where `skyrun.retries` looks for it."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    if value is not None:
        try:
            error.retry_after = float(value)  # type: ignore[attr-defined]
        except ValueError:
            pass  # an HTTP date: the backoff's own delay will do


class CloudRunApi:
    """Jobs and executions of one endpoint, with one set of credentials."""

    def __init__(
        self,
        credentials: google.auth.credentials.Credentials,
        api_endpoint: str,
        *,
        retry_seconds: float = RETRY_SECONDS,
        retry_initial: float = 0.5,
        stop: threading.Event | None = None,
    ) -> None:
        options = ClientOptions(api_endpoint=api_endpoint.rstrip("/"))
        self.jobs = run_v2.JobsClient(
            credentials=credentials, transport="rest", client_options=options
        )
        self.executions = run_v2.ExecutionsClient(
            credentials=credentials, transport="rest", client_options=options
        )
        self.retry_seconds = retry_seconds
        self.retry_initial = retry_initial
        self.stop = stop

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Call `fn`, retrying transient failures; `what` names the call in logs."""

        def attempt() -> T:
            try:
                return fn()
            except Exception as exc:
                _with_retry_after(exc)
                raise

        def on_retry(error: BaseException, delay: float) -> None:
            logger.warning("Cloud Run %s failed: %s; trying again in %.1fs", what, error, delay)

        return retry_call(
            attempt,
            should_retry=is_transient,
            timeout=self.retry_seconds,
            initial=self.retry_initial,
            maximum=10.0,
            stop=self.stop,
            on_retry=on_retry,
        )

    # -- jobs ----------------------------------------------------------------
    def create_job(self, parent: str, job_id: str, job: run_v2.Job) -> None:
        """Create (and, with its start_execution_token, start) a job; 409 raises Conflict."""
        request = run_v2.CreateJobRequest(parent=parent, job_id=job_id, job=job)
        self.call(
            "jobs.create",
            lambda: self.jobs.create_job(request=request, retry=None, timeout=CALL_TIMEOUT),
        )

    def get_job(self, name: str) -> run_v2.Job:
        return self.call(
            "jobs.get", lambda: self.jobs.get_job(name=name, retry=None, timeout=CALL_TIMEOUT)
        )

    def delete_job(self, name: str) -> bool:
        """Delete a job; False if it was gone already."""
        try:
            self.call(
                "jobs.delete",
                lambda: self.jobs.delete_job(name=name, retry=None, timeout=CALL_TIMEOUT),
            )
        except google_errors.NotFound:
            return False
        return True

    def list_jobs(self, parent: str, page_size: int, max_pages: int) -> Iterator[run_v2.Job]:
        """The jobs of a region, page by page, reading at most `max_pages` pages."""
        token = ""
        for _ in range(max_pages):
            request = run_v2.ListJobsRequest(parent=parent, page_size=page_size, page_token=token)
            # One page per call (the pager's own paging would not be retried).
            page = self.call(
                "jobs.list",
                lambda: self.jobs.list_jobs(
                    request=request,  # noqa: B023 (called at once, inside this iteration)
                    retry=None,
                    timeout=CALL_TIMEOUT,
                ),
            )
            yield from page.jobs
            token = page.next_page_token
            if not token:
                return

    # -- executions ----------------------------------------------------------
    def get_execution(self, name: str) -> run_v2.Execution:
        return self.call(
            "executions.get",
            lambda: self.executions.get_execution(name=name, retry=None, timeout=CALL_TIMEOUT),
        )

    def list_executions(self, job_name: str) -> list[run_v2.Execution]:
        pager = self.call(
            "executions.list",
            lambda: self.executions.list_executions(
                parent=job_name, retry=None, timeout=CALL_TIMEOUT
            ),
        )
        return list(pager)

    def cancel_execution(self, name: str) -> None:
        """Cancel an execution; one that is gone or already finished is left as it is."""
        try:
            self.call(
                "executions.cancel",
                lambda: self.executions.cancel_execution(
                    name=name, retry=None, timeout=CALL_TIMEOUT
                ),
            )
        except (google_errors.NotFound, google_errors.FailedPrecondition):
            pass


class ApiCache:
    """One `CloudRunApi` per endpoint and credentials that job configurations name.

    Attributes:
        retry_initial: The first wait before a failed call is tried again (then doubling).
    """

    def __init__(self, retry_initial: float = 0.5) -> None:
        self.retry_initial = retry_initial
        self._apis: dict[tuple[str, str], CloudRunApi] = {}
        self._lock = threading.Lock()

    def get(self, config: Mapping[str, Any]) -> tuple[CloudRunApi, str]:
        """The API of a rendered job configuration's `api_endpoint` and `credentials`
        (a gcp-credentials block's data), and the project they act in.

        Raises:
            InfrastructureError: The credentials cannot be used (the message says why).
        """
        endpoint = str(config.get("api_endpoint") or "https://run.googleapis.com")
        credentials = config.get("credentials")
        if isinstance(credentials, str):
            raise InfrastructureError(
                f"the credentials job variable is {credentials!r}, which was not resolved to a "
                "gcp-credentials block's data; write it as gcp-credentials/NAME of a block "
                "that exists"
            )
        try:
            auth = gcp_auth(credentials, endpoint)
        except CredentialsError as exc:
            raise InfrastructureError(str(exc)) from exc
        key = (endpoint, json.dumps(credentials or {}, sort_keys=True, default=str))
        with self._lock:
            api = self._apis.get(key)
            if api is None:
                api = self._apis[key] = CloudRunApi(
                    auth.credentials, endpoint, retry_initial=self.retry_initial
                )
        return api, auth.project
