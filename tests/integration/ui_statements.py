"""Counting the SQL an app runs: the UI's list pages must take a constant number of queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event


@contextmanager
def selects(api: httpx.AsyncClient) -> Iterator[list[str]]:
    """The SELECT statements the app behind `api` runs inside the block."""
    engine = api._transport.app.state.database.engine.sync_engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
