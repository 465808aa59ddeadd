"""Domain errors raised below the API and mapped to HTTP answers by the app."""

from __future__ import annotations


class SkyrunServerError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(SkyrunServerError):
    status_code = 404

    @classmethod
    def of(cls, what: str, key: object) -> NotFound:
        return cls(f"{what} {key} not found")


class Conflict(SkyrunServerError):
    status_code = 409


class Invalid(SkyrunServerError):
    """Input the rules refuse; answered as a 422 like any validation error.

    Args:
        message: what is wrong and how to fix it.
        loc: where, as in a validation error (e.g. ("body", "schedules", 0)), if known.
    """

    status_code = 422

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.loc = loc
