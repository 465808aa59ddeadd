"""Errors the client raises, carrying the server's explanation."""

from __future__ import annotations


class SkyrunAPIError(Exception):
    """The API answered with an error; `detail` is the server's message."""

    def __init__(self, status_code: int, detail: str, method: str = "", path: str = "") -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.path = path


class ObjectNotFound(SkyrunAPIError):
    pass


class ObjectConflict(SkyrunAPIError):
    pass


class Unauthorized(SkyrunAPIError):
    pass


class ServerUnreachable(Exception):
    """No answer from SKYRUN_API_URL (after retries)."""


def error_for(status_code: int, detail: str, method: str, path: str) -> SkyrunAPIError:
    kind = {404: ObjectNotFound, 409: ObjectConflict, 401: Unauthorized, 403: Unauthorized}.get(
        status_code, SkyrunAPIError
    )
    return kind(status_code, detail, method, path)


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
