"""Errors the client raises, carrying the server's explanation."""

from __future__ import annotations


class SkyrunAPIError(Exception):
    """The API answered with an error; `detail` is the server's message.

    `retry_after` is the seconds the server's Retry-After header asked for (429, 503).
    """

    def __init__(
        self,
        status_code: int,
        detail: str,
        method: str = "",
        path: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.path = path
        self.retry_after = retry_after


class ObjectNotFound(SkyrunAPIError):
    pass


class ObjectConflict(SkyrunAPIError):
    pass


class Unauthorized(SkyrunAPIError):
    pass


class ServerUnreachable(Exception):
    """No answer from the API (after the retries that were safe); the message is one line.

    `maybe_sent`: the request may have reached the server and taken effect (its
    reply was lost); `timed_out`: the last attempt ran out of SKYRUN_CLIENT_TIMEOUT.
    """

    def __init__(self, message: str, *, maybe_sent: bool = False, timed_out: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent
        self.timed_out = timed_out


def error_for(
    status_code: int, detail: str, method: str, path: str, retry_after: float | None = None
) -> SkyrunAPIError:
    kind = {404: ObjectNotFound, 409: ObjectConflict, 401: Unauthorized, 403: Unauthorized}.get(
        status_code, SkyrunAPIError
    )
    return kind(status_code, detail, method, path, retry_after)


def describe_detail(body: object) -> str:
    """One readable line from FastAPI's error bodies (a string or a list of field errors)."""
    if isinstance(body, dict):
        detail = body.get("detail", body)
        if isinstance(detail, list):
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                    parts.append(f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg")))
                else:
                    parts.append(str(item))
            return "; ".join(parts)
        return str(detail)
    return str(body)
