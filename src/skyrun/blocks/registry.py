"""The block types skyrun knows, by slug."""

from __future__ import annotations

from skyrun.blocks.base import Block
from skyrun.blocks.gcp import GcpCredentials
from skyrun.blocks.secret import Secret

BLOCK_TYPES: dict[str, type[Block]] = {
    block.block_type: block for block in (GcpCredentials, Secret)
}


class UnknownBlockType(KeyError):
    """No block type has this slug; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


def block_types() -> list[type[Block]]:
    """Every known block type, by slug."""
    return [BLOCK_TYPES[slug] for slug in sorted(BLOCK_TYPES)]


def get_block_type(slug: str) -> type[Block]:
    """The block type named `slug`.

    Raises:
        UnknownBlockType: There is none; the message names the known types.
    """
    try:
        return BLOCK_TYPES[slug]
    except KeyError:
        known = ", ".join(sorted(BLOCK_TYPES))
        raise UnknownBlockType(f"unknown block type {slug!r}; the types are: {known}") from None
