"""Blocks and block types: /api/block_types, /api/blocks.

Reading a block with `include_secrets=true` needs the API-key scope `secrets`
(server/auth.py decides it before the route runs).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from skyrun.blocks.base import Block
from skyrun.blocks.registry import block_types
from skyrun.schemas.blocks import (
    BlockCreate,
    BlockDocument,
    BlockType,
    BlockUpdate,
    check_block_name,
)
from skyrun.schemas.core import Page
from skyrun.server.api.deps import ApiRoute, Offset, transaction
from skyrun.server.db import blocks
from skyrun.server.encryption import SecretBox
from skyrun.server.errors import Invalid, NotFound

router = APIRouter(tags=["blocks"], route_class=ApiRoute)

# Reading secrets can meet a key that did not encrypt them: documented for the GET too.
_UNDECRYPTABLE: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "A stored secret cannot be decrypted with this server's key",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
}


def _describe(block: type[Block]) -> BlockType:
    return BlockType(
        slug=block.block_type,
        title=block.title,
        description=block.description,
        block_schema=block.json_schema(),
        secret_fields=block.secret_fields(),
    )


def _box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box


def _valid_name(name: str) -> str:
    try:
        return check_block_name(name)
    except ValueError as exc:
        raise Invalid(str(exc), loc=("path", "name")) from exc


@router.get("/block_types", response_model=list[BlockType])
async def list_block_types() -> list[BlockType]:
    return [_describe(block) for block in block_types()]


@router.get("/block_types/{slug}", response_model=BlockType)
async def read_block_type(slug: str) -> BlockType:
    for block in block_types():
        if block.block_type == slug:
            return _describe(block)
    raise NotFound.of("block type", repr(slug))


@router.post("/blocks", response_model=BlockDocument, status_code=201)
async def create_block(request: Request, body: BlockCreate) -> BlockDocument:
    """Create a block; its data is checked against its type (422 naming the field)."""
    async with transaction(request) as session:
        return await blocks.create_block(
            session, _box(request), body.block_type, body.name, body.data
        )


@router.get("/blocks", response_model=Page[BlockDocument])
async def list_blocks(
    request: Request,
    block_type: str | None = Query(None, max_length=100, description="Only this type."),
    limit: int = Query(100, ge=1, le=1000),
    offset: Offset = 0,
) -> Page[BlockDocument]:
    """Blocks by type and name, secrets masked."""
    async with transaction(request) as session:
        items, count = await blocks.list_blocks(session, block_type, limit, offset)
    return Page[BlockDocument](items=items, count=count, limit=limit, offset=offset)


@router.get("/blocks/{block_type}/{name}", response_model=BlockDocument, responses=_UNDECRYPTABLE)
async def read_block(
    request: Request,
    block_type: str,
    name: str,
    include_secrets: bool = Query(
        False, description="Secrets in clear instead of masked (the API-key scope `secrets`)."
    ),
) -> BlockDocument:
    async with transaction(request) as session:
        return await blocks.read_block(
            session, block_type, name, box=_box(request) if include_secrets else None
        )


@router.patch("/blocks/{block_type}/{name}", response_model=BlockDocument)
async def update_block(
    request: Request, block_type: str, name: str, body: BlockUpdate
) -> BlockDocument:
    """Change fields; a secret given as the mask `********` keeps its stored value."""
    async with transaction(request) as session:
        return await blocks.update_block(
            session, _box(request), block_type, _valid_name(name), body.data
        )


@router.delete("/blocks/{block_type}/{name}", status_code=204)
async def delete_block(request: Request, block_type: str, name: str) -> Response:
    async with transaction(request) as session:
        await blocks.delete_block(session, block_type, name)
    return Response(status_code=204)
