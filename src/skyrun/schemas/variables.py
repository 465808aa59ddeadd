"""Variables: named JSON values usable in job templates."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = re.compile(r"^[a-z0-9_\-]+$")


class VariableSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Any
    tags: list[str] = Field(default_factory=list)


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
    if not NAME_PATTERN.match(name) or len(name) > 200:
        raise ValueError(
            f"variable name {name!r} may hold only lower-case letters, digits, '_' and '-'"
        )
    return name
