"""Request machinery: the transport, bearer auth, safe retries, error mapping.

What is retried is what a repeat cannot make worse (docs/ARCHITECTURE.md,
"Over the network"):

* a request that never reached the server (no connection was made);
* a 429 or 503: the server said it did not handle the request;
* after a lost reply (a reset, a timeout) or a 502/504, only a request whose
  repeat has the first one's effect: GET, PUT and DELETE, and a POST the
  caller marks `idempotent` because it carries its own id or key (a state
  proposal's state id, a new run's id, a deployment run's idempotency key).

Anything else fails at once with an error saying it may have taken effect.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from skyrun._version import __version__
from skyrun.client.errors import ServerUnreachable, describe_detail, error_for
from skyrun.client.transport import (
    ApiRequest,
    Response,
    Transport,
    TransportError,
    encode_json,
    encode_query,
)
from skyrun.settings import Settings

if TYPE_CHECKING:
    from skyrun.client.embedded import EmbeddedTransport

M = TypeVar("M", bound=BaseModel)
logger = logging.getLogger("skyrun.client")

# Answers that say "not now": 429 and 503 mean the server did not handle the
# request; behind a gateway, 502 and 504 may come after the server acted.
_RETRY_STATUS = frozenset({429, 502, 503, 504})
_NOT_HANDLED_STATUS = frozenset({429, 503})
# `retry_for` for a request whose caller retries it in a loop of its own (heartbeats,
# polls, the recorder's background sends): only SKYRUN_CLIENT_RETRIES quick tries,
# so the loop's own backoff, not a long wait here, decides when to try again.
CALLER_RETRIES = 0.0
# Methods whose repeat does what the first did (RFC 9110's idempotent methods).
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class _RetryableAnswer(Exception):
    """An answer worth asking again for; raised only to drive the retries."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"HTTP {response.status_code} {response.reason_phrase}")
        self.response = response
        self.retry_after = response.retry_after  # read by skyrun.retries

    @property
    def maybe_processed(self) -> bool:
        return self.response.status_code not in _NOT_HANDLED_STATUS


class BaseClient:
    """Sends JSON requests to a skyrun API and turns answers into models or errors."""

    def __init__(self, settings: Settings, transport: Transport | None = None) -> None:
        self.settings = settings
        self.embedded = settings.api_url is None
        self._headers = {"User-Agent": f"skyrun/{__version__}"}
        if settings.api_key:
            self._headers["Authorization"] = f"Bearer {settings.api_key}"
        self._embedded_backend: EmbeddedTransport | None = None
        if transport is None:
            if settings.api_url is None:
                # Loaded only in embedded mode: it imports the server and SQLAlchemy.
                from skyrun.client.embedded import EmbeddedTransport

                transport = self._embedded_backend = EmbeddedTransport(settings)
            else:
                # Loaded only against a server: embedded mode needs no HTTP library.
                from skyrun.client.http import HttpTransport

                transport = HttpTransport(settings.api_url, timeout=settings.client_timeout)
        self._transport = transport
        self._retries = max(0, settings.client_retries)
        # Set by the first answer: from then on an unanswered request is retried for
        # SKYRUN_CLIENT_RETRY_SECONDS (the server is restarting, not missing).
        self._reached = False

    @property
    def api_url(self) -> str:
        return self.settings.api_url or f"embedded:{self.settings.resolved_database_url}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = False,
        retry_for: float | None = None,
        waiting_for: str | None = None,
    ) -> Response:
        """Send a request, retrying only what is safe to repeat (see the module's docstring).

        Args:
            method, path, json, params: the request (`path` relative to the API root).
            headers: more headers for this request (e.g. an Idempotency-Key).
            timeout: seconds for this request instead of SKYRUN_CLIENT_TIMEOUT.
            idempotent: a repeat of this request has the first one's effect (it
                carries its own id or key), so it is retried after a lost reply too.
            retry_for: keep retrying for up to this many seconds, instead of
                SKYRUN_CLIENT_RETRIES times (final states: the server may be restarting).
                Once the client has had an answer, SKYRUN_CLIENT_RETRY_SECONDS is the
                default: a process that reached the API waits out a restart.
                CALLER_RETRIES (0): SKYRUN_CLIENT_RETRIES tries only, for a caller
                that retries in a loop of its own.
            waiting_for: what the request does, for the one line logged when it
                has to wait (with `retry_for`).

        Raises:
            ServerUnreachable: no answer, after the retries that were safe.
            SkyrunAPIError: the API answered with an error (a subclass for 404/409/401).
        """
        path = path.lstrip("/")
        headers = {**self._headers, **headers} if headers else self._headers
        body = None
        if json is not None:
            body = encode_json(json)
            headers = {**headers, "Content-Type": "application/json"}
        request = ApiRequest(method, path, encode_query(params), body, headers, timeout)
        repeatable = idempotent or method in _IDEMPOTENT_METHODS
        try:
            response = self._send(request)
        except (TransportError, _RetryableAnswer) as first:
            if retry_for is None and self._reached and self.settings.client_retry_seconds > 0:
                retry_for = self.settings.client_retry_seconds
            response = self._retry(request, repeatable, first, retry_for, waiting_for)
        self._reached = True
        if response.is_error:
            try:
                detail = describe_detail(response.json())
            except ValueError:
                detail = response.text or response.reason_phrase
            raise error_for(response.status_code, detail, method, "/" + path, response.retry_after)
        return response

    def _send(self, request: ApiRequest) -> Response:
        response = self._transport.send(request)
        if response.status_code in _RETRY_STATUS:
            raise _RetryableAnswer(response)
        return response

    def _retry(
        self,
        request: ApiRequest,
        repeatable: bool,
        first: TransportError | _RetryableAnswer,
        retry_for: float | None,
        waiting_for: str | None,
    ) -> Response:
        """After a first failure: retry if that is safe, else give up with the right error."""
        maybe_processed = False

        def safe_to_retry(error: BaseException) -> bool:
            nonlocal maybe_processed
            if isinstance(error, TransportError):
                maybe_processed = maybe_processed or error.maybe_sent
                return repeatable or not error.maybe_sent
            if isinstance(error, _RetryableAnswer):
                maybe_processed = maybe_processed or error.maybe_processed
                return repeatable or not error.maybe_processed
            return False

        if retry_for is not None and retry_for <= 0:
            retry_for = None  # no time to wait: the usual number of tries
        attempts = None if retry_for is not None else self._retries + 1
        if not safe_to_retry(first) or attempts == 1:
            return self._give_up(request, first, maybe_processed, 1)
        # Loaded only now, after a failure: tenacity stays off the hot path of a request.
        from skyrun.retries import retry_call

        what = waiting_for or f"{request.method} /{request.path}"
        pending: list[BaseException] = [first]
        tries = 0

        def attempt() -> Response:
            nonlocal tries
            tries += 1
            if pending:
                # The first failure is replayed so that the retry helper waits (and
                # honours a Retry-After) before the second attempt, as before every other.
                raise pending.pop()
            return self._send(request)

        def log_once(error: BaseException, delay: float) -> None:
            if tries == 1 and retry_for is not None:
                logger.warning(
                    "%s: no answer from the skyrun API at %s (%s); retrying for up to %gs",
                    what,
                    self.api_url,
                    error,
                    retry_for,
                )

        try:
            response = retry_call(
                attempt,
                should_retry=safe_to_retry,
                attempts=attempts,
                timeout=retry_for,
                on_retry=log_once,
            )
        except (TransportError, _RetryableAnswer) as last:
            return self._give_up(request, last, maybe_processed, tries)
        if retry_for is not None:
            logger.info("%s: done after %d tries", what, tries)
        if request.method == "DELETE" and maybe_processed and response.status_code == 404:
            # An earlier try deleted it and its reply was lost: gone is what was asked for.
            return Response(204, b"")
        return response

    def _give_up(
        self,
        request: ApiRequest,
        error: TransportError | _RetryableAnswer,
        maybe_processed: bool,
        tries: int,
    ) -> Response:
        if isinstance(error, _RetryableAnswer):
            return error.response  # an answer after all: mapped to an API error
        what = f"{request.method} /{request.path}"
        after = f" ({tries} tries)" if tries > 1 else ""
        if error.timed_out:
            message = (
                f"the skyrun API at {self.api_url} did not answer {what} in time: "
                f"{error}{after}; if the server is slow, raise SKYRUN_CLIENT_TIMEOUT "
                f"(now {self.settings.client_timeout:g}s)"
            )
        elif error.maybe_sent:
            message = f"the skyrun API at {self.api_url} did not answer {what} ({error}){after}"
        else:
            hint = "" if self.embedded else "; is the server running? (skyrun server start)"
            message = f"cannot reach the skyrun API at {self.api_url} ({error}){after}{hint}"
        if maybe_processed and request.method not in _IDEMPOTENT_METHODS:
            message += "; it may have taken effect, so check before repeating it"
        raise ServerUnreachable(
            message, maybe_sent=maybe_processed, timed_out=error.timed_out
        ) from error

    def get_model(self, model: type[M], path: str, **kwargs: Any) -> M:
        return model.model_validate_json(self.request("GET", path, **kwargs).content)

    def post_model(self, model: type[M], path: str, body: Any = None, **kwargs: Any) -> M:
        payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
        return model.model_validate_json(self.request("POST", path, json=payload, **kwargs).content)

    def run_embedded_services(self) -> bool:
        """In embedded mode, run the server's background services in this process.

        Long-lived processes call it (workers, `flow.serve()`): with no server,
        schedules would create no runs and dead workers would go unnoticed.
        Returns whether services were started (False against a real server).
        """
        if self._embedded_backend is None:
            return False
        self._embedded_backend.start_services()
        return True

    def close(self) -> None:
        self._transport.close()
