"""Keyset cursors for the UI's list pages: newest first by (created, id), `before` a cursor.

A cursor is the last row's `created` and `id` as text (`2026-12-02T15:00:00+00:00~UUID`),
so the next page is one indexed range query, never an OFFSET that reads what it skips.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

SEPARATOR = "~"


@dataclass(frozen=True)
class Cursor:
    created: datetime
    id: uuid.UUID

    def text(self) -> str:
        return f"{self.created.isoformat()}{SEPARATOR}{self.id}"


def parse_cursor(text: str | None) -> Cursor | None:
    """The cursor `text` spells, None for none.

    Raises:
        ValueError: It is not a cursor these pages make (the page says so and starts over).
    """
    if not text:
        return None
    created_text, separator, id_text = text.partition(SEPARATOR)
    if not separator or len(text) > 100:
        raise ValueError(f"{text[:100]!r} is not a page cursor")
    created = datetime.fromisoformat(created_text)
    try:
        # In UTC, as stored: 0001-01-01T00:00+14:00 is before the first representable
        # instant, which the database driver would only find out as it sent the query.
        created = created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text[:100]!r} is not a page cursor (a time out of range)") from None
    return Cursor(created=created, id=uuid.UUID(id_text))


def before(created: Any, id_column: Any, cursor: Cursor | None) -> list[Any]:
    """The WHERE clauses for rows after `cursor` in (created, id) descending order."""
    if cursor is None:
        return []
    return [
        sa.or_(created < cursor.created, sa.and_(created == cursor.created, id_column < cursor.id))
    ]


def page_of(rows: list[Any], limit: int) -> tuple[list[Any], Cursor | None]:
    """The first `limit` of `rows` (fetched with limit + 1) and the next page's cursor."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], Cursor(created=last.created, id=last.id)
