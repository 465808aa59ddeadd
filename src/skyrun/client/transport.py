"""What the client needs from a way of reaching the API: send a request, get an answer.

Two transports implement it: `HttpTransport` (httpx, to a server at
SKYRUN_API_URL) and `EmbeddedTransport` (the server's own ASGI app called
in-process). The client encodes bodies and query strings once, here, so both
see the same bytes.
"""

from __future__ import annotations

import json
import time
from datetime import UTC
from http import HTTPStatus
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlencode


class TransportError(Exception):
    """The request got no answer (connection refused or reset, a timeout, backend closed).

    `maybe_sent` says whether the server may have received, and acted on, the
    request: False when no connection was made (nothing can have happened, so
    any request may be sent again), True once it was on its way (a repeat may
    do the work twice, so only requests that are safe to repeat are retried).
    `timed_out` is set when the cause was a timeout (`SKYRUN_CLIENT_TIMEOUT`).
    """

    def __init__(self, message: str, *, maybe_sent: bool, timed_out: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent
        self.timed_out = timed_out


class Response:
    """An API answer: status, headers (lower-case names), body bytes and the parsing the
    client needs."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(
        self, status_code: int, content: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.status_code = status_code
        self.content = content
        self.headers = headers or {}

    @property
    def retry_after(self) -> float | None:
        """The seconds a Retry-After header asks the client to wait, if it has one."""
        value = self.headers.get("retry-after")
        return parse_retry_after(value) if value is not None else None

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def reason_phrase(self) -> str:
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

    def json(self) -> Any:
        return json.loads(self.content)


class ApiRequest(NamedTuple):
    """One request, encoded: `path` is relative to the API root (e.g. "flow_runs/filter")."""

    method: str
    path: str
    query: str
    body: bytes | None
    headers: dict[str, str]
    timeout: float | None


class Transport(Protocol):
    def send(self, request: ApiRequest) -> Response:
        """Send one request; raise TransportError when nothing answered (saying whether
        the request may have reached the server)."""
        ...

    def close(self) -> None: ...


def parse_retry_after(value: str, now: float | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date; None when unreadable."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        # Loaded only for a date-valued header, which a server sends rarely.
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": a date in UTC, says RFC 5322
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def encode_json(value: Any) -> bytes:
    """A request body: compact UTF-8 JSON; NaN and infinities are refused (not JSON).

    A lone surrogate (a non-UTF-8 file name from `os.listdir`, say) cannot be
    encoded: it is sent as U+FFFD instead of failing the request (see
    skyrun/safe_text.py; the server makes NUL safe).
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # Imported here: only text that cannot be encoded needs it.
        from skyrun.safe_text import replace_surrogates

        return replace_surrogates(text).encode()


def encode_query(params: dict[str, Any] | None) -> str:
    """A query string; None values are left out, lists repeat their key, bools are lowercase."""
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is None:
                continue
            pairs.append(
                (key, ("true" if item else "false") if isinstance(item, bool) else str(item))
            )
    return urlencode(pairs)
