"""Live pages: server-sent events that tell an open page what changed.

A page names a topic (`/ui/events?topic=runs`); the stream asks the topic's
probe for a fingerprint of what the page shows a few times a second and sends
`change` when it moves, and the page re-fetches its live fragments. A probe is one
small query (a count and a latest timestamp), so an open page costs little, and
it works the same behind several replicas (it reads the shared database).
Topics with their own events (a run's log lines) send their data themselves, with
the feed's cursor as the event id, so a reconnecting page resumes where it was.

Each stream ends after STREAM_SECONDS and the browser reconnects (EventSource
does, after the `retry` the stream gives), so no connection outlives a deploy.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.server.ui.guard import require_viewer

# A probe: (session, topic argument) -> a fingerprint of what the page shows.
Probe = Callable[[AsyncSession, str], Awaitable[Any]]
# A feed: (session, topic argument, cursor) -> (events to send, the new cursor).
Feed = Callable[[AsyncSession, str, Any], Awaitable[tuple[list[tuple[str, Any]], Any]]]

PROBES: dict[str, Probe] = {}
FEEDS: dict[str, Feed] = {}
POLL_SECONDS = 0.3
STREAM_SECONDS = 120.0
# How often an open stream checks that its session's key is still valid (revoked: it ends).
RECHECK_KEY_SECONDS = 5.0
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 500

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_viewer)])


def probe(topic: str) -> Callable[[Probe], Probe]:
    """Register a probe for `topic` (`/ui/events?topic=TOPIC[:ARG]`)."""

    def register(function: Probe) -> Probe:
        PROBES[topic] = function
        return function

    return register


def feed(topic: str) -> Callable[[Feed], Feed]:
    """Register a feed for `topic`: it sends its own events (e.g. new log lines)."""

    def register(function: Feed) -> Feed:
        FEEDS[topic] = function
        return function

    return register


def _message(event: str, data: Any, event_id: Any = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, default=str, separators=(",", ":"))
    lines = "".join(f"data: {line}\n" for line in text.split("\n"))
    # The browser sends the last id back as Last-Event-ID when it reconnects: a feed
    # resumes after what the page already has.
    id_line = f"id: {event_id}\n" if event_id is not None else ""
    return f"event: {event}\n{id_line}{lines}\n".encode()


@router.get("/ui/events")
async def events(request: Request, topic: str, cursor: str = "") -> Response:
    name, _, argument = topic.partition(":")
    watched = PROBES.get(name)
    fed = FEEDS.get(name)
    if watched is None and fed is None:
        return Response(f"no such live topic {name!r}", status_code=404, media_type="text/plain")
    database = request.app.state.database
    auth = getattr(request.app.state, "api_key_auth", None)
    session_key = getattr(getattr(request.state, "ui_session", None), "api_key", None)

    async def stream() -> AsyncIterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()
        last: Any = None
        position: Any = request.headers.get("last-event-id") or cursor or None
        started = last_sent = checked = time.monotonic()
        while time.monotonic() - started < STREAM_SECONDS:
            if await request.is_disconnected():
                return
            if auth is not None and time.monotonic() - checked > RECHECK_KEY_SECONDS:
                # A key revoked while its page is open stops being served within seconds;
                # the browser's reconnect then meets the login redirect.
                if session_key is None or await auth.verify(session_key) is None:
                    return
                checked = time.monotonic()
            async with database.read_session() as session, session.begin():
                if watched is not None:
                    current = await watched(session, argument)
                    if last is not None and current != last:
                        yield _message("change", {"topic": topic})
                        last_sent = time.monotonic()
                    last = current
                if fed is not None:
                    sent, position = await fed(session, argument, position)
                    for number, (event, data) in enumerate(sent, 1):
                        yield _message(event, data, position if number == len(sent) else None)
                        last_sent = time.monotonic()
            if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                yield b": keepalive\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(POLL_SECONDS)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
