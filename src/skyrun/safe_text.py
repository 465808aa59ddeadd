"""Text that cannot be stored is made safe on the way in, never a reason to lose a record.

Two kinds of character reach skyrun that a database or an encoder refuses:

* a lone surrogate (U+D800-U+DFFF): Python's `os.listdir` and `sys.argv`
  hold one for each byte of a name that is not UTF-8, and such a string
  cannot be encoded as UTF-8 at all;
* NUL (U+0000): valid JSON, but PostgreSQL stores it neither in text nor in
  JSONB.

Both become U+FFFD (the replacement character), on both sides: the client
replaces lone surrogates when it encodes a request (`replace_surrogates`,
called by `client/transport.py` only when encoding failed), and the server
replaces both in every request before any route sees it (`SafeTextMiddleware`:
JSON bodies, paths, query strings), so what a route validates, stores and
answers is the same text on SQLite and PostgreSQL. Replacing is idempotent: text
made safe twice is the same.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Types only: the client imports this module without loading the server's libraries.
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

REPLACEMENT = "\ufffd"

_UNSAFE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
_SURROGATES = re.compile("[\ud800-\udfff]")
# In JSON text NUL and lone surrogates can only be written as \u escapes (a raw
# control character or surrogate is not valid JSON in UTF-8). The alternatives
# are tried left to right at each backslash: an escaped backslash is consumed
# whole (so `\\u0000` stays the literal text it is), a surrogate pair is kept
# (it is one valid character), and what is left is NUL or a lone surrogate.
_UNSAFE_JSON_ESCAPES = re.compile(
    rb"\\\\"
    rb"|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    rb"|\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})"
)
_JSON_REPLACEMENT = rb"\ufffd"
_QUERY_NUL = re.compile(rb"%00")
_QUERY_REPLACEMENT = b"%EF%BF%BD"


def clean_text(text: str) -> str:
    """`text` with every NUL and lone surrogate replaced by U+FFFD."""
    return _UNSAFE_CHARACTERS.sub(REPLACEMENT, text)


def replace_surrogates(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD, so that it encodes as UTF-8.

    (A Python string never holds a valid surrogate pair: an astral character
    is one code point, so every surrogate in one is lone.)
    """
    return _SURROGATES.sub(REPLACEMENT, text)


def _replace_escape(match: re.Match[bytes]) -> bytes:
    escape = match.group()
    return escape if len(escape) != 6 else _JSON_REPLACEMENT


def clean_json_bytes(body: bytes) -> bytes:
    """A JSON document with every `\\u0000` and lone-surrogate escape written as `\\ufffd`."""
    if b"\\u" not in body:  # nearly every request: nothing to scan
        return body
    return _UNSAFE_JSON_ESCAPES.sub(_replace_escape, body)


def _is_json(scope: Scope) -> bool:
    # FastAPI parses a body without a content type as JSON too.
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media_type = value.split(b";", 1)[0].strip().lower()
            return media_type == b"application/json" or media_type.endswith(b"+json")
    return True


class SafeTextMiddleware:
    """ASGI middleware: the request's JSON body, path and query string made safe (see above)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = self._clean_scope(scope)
        if scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        await self.app(scope, await self._cleaned_body(receive), send)

    @staticmethod
    def _clean_scope(scope: Scope) -> Scope:
        # Path parameters are read from the decoded path, query parameters from
        # the raw query string (decoded later, invalid UTF-8 replaced).
        path: str = scope.get("path", "")
        query: bytes = scope.get("query_string", b"")
        if _UNSAFE_CHARACTERS.search(path):
            scope = {**scope, "path": clean_text(path)}
        if b"%00" in query:
            scope = {**scope, "query_string": _QUERY_NUL.sub(_QUERY_REPLACEMENT, query)}
        return scope

    @staticmethod
    async def _cleaned_body(receive: Receive) -> Receive:
        # The whole body is read first: an escape may straddle two chunks, and
        # every route reads the whole body anyway.
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client left before its body arrived: let the app see it.
                pending: Message | None = message
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                pending = None
                break
        body = clean_json_bytes(b"".join(chunks))
        sent = False

        async def cleaned_receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                if pending is not None:
                    return pending
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return cleaned_receive
