"""Request machinery: the transport, bearer auth, retries, error mapping."""

from __future__ import annotations

import time
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
_RETRY_STATUS = frozenset({429, 502, 503, 504})


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
    ) -> Response:
        """Send a request, retrying connection failures and 429/502/503/504."""
        path = path.lstrip("/")
        headers = {**self._headers, **headers} if headers else self._headers
        body = None
        if json is not None:
            body = encode_json(json)
            headers = {**headers, "Content-Type": "application/json"}
        request = ApiRequest(method, path, encode_query(params), body, headers, timeout)
        attempt = 0
        while True:
            try:
                response = self._transport.send(request)
            except TransportError as exc:
                if attempt >= self._retries:
                    raise ServerUnreachable(
                        f"cannot reach the skyrun API at {self.settings.api_url} ({exc}); "
                        "is the server running? (skyrun server start)"
                    ) from exc
            else:
                if response.status_code not in _RETRY_STATUS or attempt >= self._retries:
                    break
            attempt += 1
            time.sleep(min(0.2 * 2**attempt, 5.0))
        if response.is_error:
            try:
                detail = describe_detail(response.json())
            except ValueError:
                detail = response.text or response.reason_phrase
            raise error_for(response.status_code, detail, method, "/" + path)
        return response

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
