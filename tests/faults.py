"""Network faults between a client and a real server: a proxy that loses chosen replies.

`FaultProxy(upstream_port)` listens on a free loopback port and forwards each
HTTP/1.1 request it receives to the server, and the server's answer back. A
rule picks requests by method, path (a regular expression matched against the
whole path, without the query) and, optionally, a fragment of the body; for a
picked request the server still gets the whole request and answers it (it
acted), and then the proxy, instead of passing the answer on:

* `drop_reply`: closes the client's connection without a byte of it, as when a
  connection breaks after the server answered (the client sees a reset);
* `hold_reply`: sends nothing until the client gives up (its read timeout).

Each request goes to the server on a connection of its own, so the server
closing an idle keep-alive connection never looks like a fault. The proxy
speaks just enough HTTP/1.1 to find where a message ends (Content-Length or
chunked bodies); it changes no byte it forwards.

Shared by the fault tests: pytest puts this folder on sys.path, so a test
imports it as `faults`.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field
from typing import BinaryIO

# A guard for a held reply whose client never gives up, not a timing assumption.
HOLD_GUARD_SECONDS = 120.0


@dataclass
class Rule:
    """Which requests lose their reply, and how many of them still will."""

    method: str
    path: re.Pattern[str]
    body_contains: bytes | None
    action: str  # "drop" or "hold"
    remaining: int
    hits: int = 0
    seen: list[str] = field(default_factory=list)

    def matches(self, method: str, path: str, body: bytes) -> bool:
        return (
            self.remaining > 0
            and method == self.method
            and self.path.fullmatch(path) is not None
            and (self.body_contains is None or self.body_contains in body)
        )


@dataclass
class _Message:
    head: bytes
    body: bytes
    start_line: str
    headers: dict[str, str]


class FaultProxy:
    """A loopback proxy in front of the server at `upstream_port` (see the module docstring)."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.requests: list[str] = []  # "METHOD /path" of every request, in order
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._connections: set[socket.socket] = set()
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()

    # -- rules -------------------------------------------------------------------
    def drop_reply(
        self, method: str, path: str, *, body_contains: str | None = None, times: int = 1
    ) -> Rule:
        """Lose the reply of the next `times` requests that match (after the server answered)."""
        return self._add(method, path, body_contains, "drop", times)

    def hold_reply(
        self, method: str, path: str, *, body_contains: str | None = None, times: int = 1_000_000
    ) -> Rule:
        """Never pass on the reply of matching requests: the client times out."""
        return self._add(method, path, body_contains, "hold", times)

    def _add(
        self, method: str, path: str, body_contains: str | None, action: str, times: int
    ) -> Rule:
        rule = Rule(
            method=method.upper(),
            path=re.compile(path),
            body_contains=body_contains.encode() if body_contains is not None else None,
            action=action,
            remaining=times,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def _take_rule(self, method: str, path: str, body: bytes) -> Rule | None:
        with self._lock:
            self.requests.append(f"{method} {path}")
            for rule in self._rules:
                if rule.matches(method, path, body):
                    rule.remaining -= 1
                    rule.hits += 1
                    rule.seen.append(f"{method} {path}")
                    return rule
        return None

    # -- serving -----------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.add(client)
            threading.Thread(
                target=self._serve, args=(client,), name="fault-proxy-conn", daemon=True
            ).start()

    def _serve(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        try:
            while True:
                request = _read_message(reader, request_method=None)
                if request is None:
                    return  # the client closed its connection
                method, target = request.start_line.split(" ", 2)[:2]
                path = target.split("?", 1)[0]
                response = self._forward(request, method)
                rule = self._take_rule(method, path, request.body)
                if rule is not None:
                    if rule.action == "hold":
                        client.settimeout(HOLD_GUARD_SECONDS)
                        while client.recv(65536):  # until the client gives up and closes
                            pass
                    return  # closing the connection loses the reply
                if response is None:
                    return
                client.sendall(response.head + response.body)
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.discard(client)
            reader.close()
            client.close()

    def _forward(self, request: _Message, method: str) -> _Message | None:
        with socket.create_connection(self.upstream) as upstream:
            upstream.sendall(request.head + request.body)
            with upstream.makefile("rb") as upstream_reader:
                return _read_message(upstream_reader, request_method=method)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _read_message(reader: BinaryIO, request_method: str | None) -> _Message | None:
    """One HTTP/1.1 message, raw; None at a clean end of the stream.

    `request_method` is None for a request, else the method of the request this
    message answers (a HEAD's answer has no body).
    """
    head = b""
    while True:
        line = reader.readline(65537)
        if not line:
            if head:
                raise OSError("the connection closed in the middle of a message head")
            return None
        if not head and line in (b"\r\n", b"\n"):
            continue  # a stray empty line between messages
        head += line
        if line in (b"\r\n", b"\n"):
            break
    lines = head.decode("latin-1").split("\r\n")
    start_line = lines[0]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = _read_body(reader, headers, start_line, request_method)
    return _Message(head, body, start_line, headers)


def _read_body(
    reader: BinaryIO, headers: dict[str, str], start_line: str, request_method: str | None
) -> bytes:
    if request_method is not None:
        status = int(start_line.split(" ", 2)[1])
        if request_method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _read_chunked(reader)
    if "content-length" in headers:
        return _read_exactly(reader, int(headers["content-length"]))
    if request_method is None:
        return b""  # a request without a length has no body
    return reader.read()  # an answer without a length ends when the connection does


def _read_chunked(reader: BinaryIO) -> bytes:
    raw = b""
    while True:
        size_line = reader.readline()
        raw += size_line
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers, up to the empty line
                trailer = reader.readline()
                raw += trailer
                if trailer in (b"\r\n", b"\n", b""):
                    return raw
        raw += _read_exactly(reader, size + 2)  # the chunk and its CRLF


def _read_exactly(reader: BinaryIO, size: int) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise OSError("the connection closed in the middle of a message body")
    return data
