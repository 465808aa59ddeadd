"""Block documents: stored by (type, name), secret fields encrypted, masked in reads.

A secret field's value is stored as `{"$fernet": TOKEN}`, the token encrypting the
value's JSON; the other fields are stored as they are (so they can be read and
filtered without the key).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.blocks.base import MASK, Block, BlockDataError, mask_secrets
from skyrun.blocks.registry import UnknownBlockType, get_block_type
from skyrun.schemas.blocks import BlockDocument
from skyrun.schemas.states import utcnow
from skyrun.server.db.models import BlockRecord
from skyrun.server.encryption import SecretBox
from skyrun.server.errors import Conflict, Invalid, NotFound

ENCRYPTED_KEY = "$fernet"


def block_type_of(slug: str, loc: tuple[str | int, ...]) -> type[Block]:
    """The block type `slug`; an unknown one is a 422 at `loc` listing the known types."""
    try:
        return get_block_type(slug)
    except UnknownBlockType as exc:
        raise Invalid(str(exc), loc=loc) from None


def _checked(block: type[Block], data: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return block.validate_data(data)
    except BlockDataError as exc:
        # The first problem's field is the error's location (shown before the message);
        # any others name their own.
        (first, message), *others = exc.problems or [("", str(exc))]
        text = "; ".join([message, *(f"{f}: {m}" if f else m for f, m in others)])
        loc: tuple[str | int, ...] = ("body", "data", first) if first else ("body", "data")
        raise Invalid(text, loc=loc) from None


def _encrypt(block: type[Block], data: dict[str, Any], box: SecretBox) -> dict[str, Any]:
    secret = block.secret_fields()
    return {
        key: {ENCRYPTED_KEY: box.encrypt(json.dumps(value))} if key in secret else value
        for key, value in data.items()
    }


def _is_encrypted(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {ENCRYPTED_KEY}


def _secret_fields(record: BlockRecord) -> list[str]:
    try:
        return get_block_type(record.block_type).secret_fields()
    except UnknownBlockType:
        # A type this server no longer knows: whatever was stored encrypted stays secret.
        return [key for key, value in record.data.items() if _is_encrypted(value)]


def _decrypt(record: BlockRecord, box: SecretBox) -> dict[str, Any]:
    secret = _secret_fields(record)
    data: dict[str, Any] = {}
    for key, value in record.data.items():
        if key in secret and _is_encrypted(value):
            what = f"block {record.block_type}/{record.name} field {key!r}"
            value = json.loads(box.decrypt(value[ENCRYPTED_KEY], what))
        data[key] = value
    return data


def _document(record: BlockRecord, data: dict[str, Any]) -> BlockDocument:
    return BlockDocument(
        id=record.id,
        block_type=record.block_type,
        name=record.name,
        data=data,
        created=record.created,
        updated=record.updated,
    )


def masked_document(record: BlockRecord) -> BlockDocument:
    """The block as every read shows it: its secret fields masked."""
    return _document(record, mask_secrets(record.data, _secret_fields(record)))


async def _find(session: AsyncSession, block_type: str, name: str) -> BlockRecord:
    record = await session.scalar(
        sa.select(BlockRecord).where(BlockRecord.block_type == block_type, BlockRecord.name == name)
    )
    if record is None:
        raise NotFound(f"block {block_type}/{name} not found")
    return record


async def create_block(
    session: AsyncSession, box: SecretBox, block_type: str, name: str, data: Mapping[str, Any]
) -> BlockDocument:
    """Store a new block; its data validated against its type, secrets encrypted.

    Raises:
        Invalid: An unknown type or data that does not fit it.
        Conflict: A block of this type and name exists.
    """
    block = block_type_of(block_type, ("body", "block_type"))
    if any(value == MASK for key, value in data.items() if key in block.secret_fields()):
        raise Invalid(
            f"a new block's secret fields need their values, not the mask {MASK!r}",
            loc=("body", "data"),
        )
    stored = _encrypt(block, _checked(block, data), box)
    existing = await session.scalar(
        sa.select(BlockRecord.id).where(
            BlockRecord.block_type == block_type, BlockRecord.name == name
        )
    )
    if existing is not None:
        raise Conflict(
            f"block {block_type}/{name} already exists; change it with "
            f"'skyrun block update {block_type}/{name} --field KEY=VALUE'"
        )
    record = BlockRecord(id=uuid.uuid4(), block_type=block_type, name=name, data=stored)
    try:
        # In a savepoint: a create racing this one makes ours fail alone, as a 409.
        async with session.begin_nested():
            session.add(record)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"block {block_type}/{name} already exists") from None
    return masked_document(record)


async def read_block(
    session: AsyncSession,
    block_type: str,
    name: str,
    *,
    box: SecretBox | None = None,
) -> BlockDocument:
    """A block, its secrets masked, or decrypted when `box` is given.

    Raises:
        NotFound: No such block.
        UndecryptableSecret: `box` holds another key than the one the secrets were stored with.
    """
    record = await _find(session, block_type, name)
    if box is None:
        return masked_document(record)
    return _document(record, _decrypt(record, box))


async def list_blocks(
    session: AsyncSession, block_type: str | None, limit: int, offset: int
) -> tuple[list[BlockDocument], int]:
    """Blocks by type and name, secrets masked, with how many match in all."""
    where = [] if block_type is None else [BlockRecord.block_type == block_type]
    rows = await session.scalars(
        sa.select(BlockRecord)
        .where(*where)
        .order_by(BlockRecord.block_type, BlockRecord.name)
        .limit(limit)
        .offset(offset)
    )
    count = await session.scalar(sa.select(sa.func.count()).select_from(BlockRecord).where(*where))
    return [masked_document(record) for record in rows], int(count or 0)


async def update_block(
    session: AsyncSession,
    box: SecretBox,
    block_type: str,
    name: str,
    changes: Mapping[str, Any],
) -> BlockDocument:
    """Change some of a block's fields: a given key replaces that field, `null` clears it,
    and a secret field given as the mask keeps its stored value.

    Raises:
        NotFound: No such block.
        Invalid: The changed document does not fit its type.
        UndecryptableSecret: A kept secret cannot be decrypted with this key.
    """
    block = block_type_of(block_type, ("path", "block_type"))
    record = await _find(session, block_type, name)
    secret = block.secret_fields()
    kept = {key for key, value in changes.items() if key in secret and value == MASK}
    merged = {**_decrypt(record, box), **{k: v for k, v in changes.items() if k not in kept}}
    merged = {key: value for key, value in merged.items() if value is not None}
    stored = _encrypt(block, _checked(block, merged), box)
    for key in kept:
        # The token as it was: the value is unchanged, so it is not encrypted again.
        if key in record.data:
            stored[key] = record.data[key]
    record.data = stored
    record.updated = utcnow()
    await session.flush()
    return masked_document(record)


async def delete_block(session: AsyncSession, block_type: str, name: str) -> None:
    """Remove a block.

    Raises:
        NotFound: No such block.
    """
    result = await session.execute(
        sa.delete(BlockRecord).where(BlockRecord.block_type == block_type, BlockRecord.name == name)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"block {block_type}/{name} not found")
