"""Blocks and block types as the API shows them.

A block is addressed by its type's slug and its name (`gcp-credentials/my-creds`);
names are lower-case slugs so `{{ skyrun.blocks.TYPE.NAME }}` can spell them.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from skyrun.schemas.limits import MAX_NAME_LENGTH, JSONValue, fullmatch

NAME_PATTERN = re.compile(r"[a-z0-9_\-]+")


def check_block_name(name: str) -> str:
    """A block name: lower-case letters, digits, '_' and '-' (no '.' nor '/', which address
    fields and types).

    Raises:
        ValueError: It is not; the message says what is allowed.
    """
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a block name may be at most {MAX_NAME_LENGTH} characters long")
    if not fullmatch(NAME_PATTERN, name):
        raise ValueError(
            f"block name {name!r} may hold only lower-case letters, digits, '_' and '-'"
        )
    return name


BlockName = Annotated[str, AfterValidator(check_block_name)]


class BlockType(BaseModel):
    """A kind of block: its slug, what it is for, and its fields' JSON schema."""

    slug: str
    title: str
    description: str
    block_schema: dict[str, Any] = Field(
        description='The fields\' JSON schema; secret fields carry `"secret": true`.'
    )
    secret_fields: list[str]


class BlockCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    block_type: str = Field(max_length=100, description="A block type's slug.")
    name: BlockName
    data: dict[str, JSONValue] = Field(default_factory=dict)


class BlockUpdate(BaseModel):
    """Fields to change: a given key replaces that field, `null` clears it, and a secret
    field given as the mask `********` keeps its stored value."""

    model_config = ConfigDict(extra="forbid")
    data: dict[str, JSONValue]


class BlockDocument(BaseModel):
    """A block; its secret fields masked (`********`) unless read with its secrets."""

    id: uuid.UUID
    block_type: str
    name: str
    data: dict[str, Any]
    created: datetime
    updated: datetime
