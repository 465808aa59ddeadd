"""Client methods for blocks and block types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter

from skyrun.client.base import BaseClient
from skyrun.client.errors import ObjectNotFound
from skyrun.schemas.blocks import BlockCreate, BlockDocument, BlockType, BlockUpdate
from skyrun.schemas.core import Page

_TYPES = TypeAdapter(list[BlockType])


class BlocksClientMixin(BaseClient):
    """Blocks: create, read (masked or with secrets), list, update, delete."""

    def list_block_types(self) -> list[BlockType]:
        return _TYPES.validate_json(self.request("GET", "block_types").content)

    def read_block_type(self, slug: str) -> BlockType:
        return self.get_model(BlockType, f"block_types/{slug}")

    def create_block(self, block_type: str, name: str, data: Mapping[str, Any]) -> BlockDocument:
        """Create a block (secrets come back masked). Not retried after a lost reply: a
        repeat would be a 409 for the block the first request made."""
        body = BlockCreate(block_type=block_type, name=name, data=dict(data))
        return self.post_model(BlockDocument, "blocks", body)

    def read_block(
        self, block_type: str, name: str, *, include_secrets: bool = False
    ) -> BlockDocument:
        """A block; with `include_secrets`, its secrets in clear (the key needs scope
        `secrets`)."""
        params = {"include_secrets": "true"} if include_secrets else None
        return self.get_model(BlockDocument, f"blocks/{block_type}/{name}", params=params)

    def read_block_data(self, block_type: str, name: str) -> dict[str, Any]:
        """A block's data with its secrets (what workers and pull steps use).

        Raises:
            ObjectNotFound: There is no such block.
        """
        return self.read_block(block_type, name, include_secrets=True).data

    def block_value(self, block_type: str, name: str) -> dict[str, Any]:
        """`read_block_data` as a templating `BlockLookup`: KeyError when there is no block."""
        try:
            return self.read_block_data(block_type, name)
        except ObjectNotFound:
            raise KeyError(f"{block_type}/{name}") from None

    def list_blocks(
        self, block_type: str | None = None, limit: int = 100, offset: int = 0
    ) -> Page[BlockDocument]:
        params = {"block_type": block_type, "limit": limit, "offset": offset}
        return self.get_model(Page[BlockDocument], "blocks", params=params)

    def update_block(self, block_type: str, name: str, changes: Mapping[str, Any]) -> BlockDocument:
        """Change fields (`None` clears one; the mask `********` keeps a secret as stored)."""
        body = BlockUpdate(data=dict(changes)).model_dump(mode="json")
        return BlockDocument.model_validate_json(
            self.request("PATCH", f"blocks/{block_type}/{name}", json=body).content
        )

    def delete_block(self, block_type: str, name: str) -> None:
        self.request("DELETE", f"blocks/{block_type}/{name}")
