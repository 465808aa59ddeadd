"""API keys as the API shows them; the secret appears once, at creation.

A key has one of four scopes, each granting the ones before it:
read (GET requests and the POST filters that only read), write (everything but
API keys and block secrets), secrets (write, and reading blocks with their
secrets: what a worker and a flow that use blocks need) and admin (everything,
API keys included).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skyrun.schemas.limits import Name


class ApiKeyScope(enum.StrEnum):
    READ = "read"
    WRITE = "write"
    SECRETS = "secrets"
    ADMIN = "admin"


# What each scope grants; stored space-separated in api_keys.scopes.
SCOPE_GRANTS: dict[ApiKeyScope, tuple[str, ...]] = {
    ApiKeyScope.READ: ("read",),
    ApiKeyScope.WRITE: ("read", "write"),
    ApiKeyScope.SECRETS: ("read", "write", "secrets"),
    ApiKeyScope.ADMIN: ("read", "write", "secrets", "admin"),
}


def highest_scope(scopes: list[str] | tuple[str, ...] | set[str]) -> str:
    """The widest of `scopes` by name (admin > secrets > write > read), or "none"."""
    for scope in (ApiKeyScope.ADMIN, ApiKeyScope.SECRETS, ApiKeyScope.WRITE, ApiKeyScope.READ):
        if scope.value in scopes:
            return scope.value
    return "none"


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    scope: ApiKeyScope = Field(
        default=ApiKeyScope.WRITE,
        description="read: GETs and filters; write: all but API keys and block secrets; "
        "secrets: write and reading block secrets; admin: everything.",
    )

    @field_validator("name")
    @classmethod
    def _not_an_id(cls, name: str) -> str:
        # Revoking takes a name or an id: a name that reads as an id would be ambiguous.
        try:
            uuid.UUID(name)
        except ValueError:
            return name
        raise ValueError("an API key's name must not look like an id (a UUID); pick another name")


class ApiKey(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created: datetime
    last_used: datetime | None = Field(
        description="When the key was last accepted, to the minute (it is not written per request)."
    )
    revoked: bool

    @field_validator("scopes", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return value.split() if isinstance(value, str) else value


class ApiKeyCreated(ApiKey):
    key: str = Field(description="The key itself; shown once, only its hash is stored.")
