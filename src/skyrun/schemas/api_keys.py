"""API keys as the API shows them; the secret appears once, at creation."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class ApiKey(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    prefix: str
    created: datetime
    last_used: datetime | None
    revoked: bool


class ApiKeyCreated(ApiKey):
    key: str = Field(description="The key itself; shown once, only its hash is stored.")
