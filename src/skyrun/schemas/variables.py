"""Variables: named JSON values usable in job templates."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skyrun.schemas.limits import MAX_NAME_LENGTH, JSONValue, Tags, fullmatch

NAME_PATTERN = re.compile(r"[a-z0-9_\-]+")


class VariableSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: JSONValue
    tags: Tags = Field(default_factory=list)


class Variable(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    value: Any
    tags: list[str]
    created: datetime
    updated: datetime


def check_variable_name(name: str) -> str:
    """Variable names are lower-case slugs so templates can reference them."""
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"variable name may be at most {MAX_NAME_LENGTH} characters long")
    if not fullmatch(NAME_PATTERN, name):
        raise ValueError(
            f"variable name {name!r} may hold only lower-case letters, digits, '_' and '-'"
        )
    return name
