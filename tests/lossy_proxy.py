"""A small HTTP proxy for fault tests: loses chosen replies, answers 500, refuses requests.

It sits between a client and a real server process and understands just
enough HTTP/1.1 (a head, then a Content-Length or chunked body) to act per
request on a keep-alive connection:

* `fault(path, "drop_reply")`: the next request for `path` reaches the server,
  which acts on it; its reply is thrown away and the connection closed (a
  lost reply);
* `fault(path, "500")`: the next request for `path` is answered 500 without
  reaching the server;
* `refusing = True`: every request is dropped unanswered, without reaching the
  server (the server is away).

(Written for the recorder's tests; a shared fault proxy, tests/faults.py, is
being written beside it and may replace this one.)
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from typing import BinaryIO

_ANSWER_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
    b'content-length: 34\r\n\r\n{"detail":"Internal Server Error"}'
)


def _read_message(stream: BinaryIO) -> tuple[bytes, bytes] | None:
    """One HTTP message's (head, body) as raw bytes; None at the end of the stream."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = stream.readline()
        if not line:
            return None
        head += line
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = b""
        while True:
            size_line = stream.readline()
            body += size_line
            size = int(size_line.split(b";")[0], 16)
            body += stream.read(size + 2)
            if size == 0:
                return head, body
    return head, stream.read(int(headers.get(b"content-length", b"0")))


class LossyProxy:
    """Listens on a free loopback port and forwards to `upstream_port`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.refusing = False
        self.seen: list[str] = []  # the path of every request received, in order
        self._faults: dict[str, deque[str]] = {}
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="lossy-proxy", daemon=True).start()

    def fault(self, path: str, *faults: str) -> None:
        """Queue faults ("drop_reply", "500") for the next requests for `path` (e.g. "/api/batch")."""
        with self._lock:
            self._faults.setdefault(path, deque()).extend(faults)

    def count(self, path: str) -> int:
        with self._lock:
            return self.seen.count(path)

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _next_fault(self, path: str) -> str | None:
        with self._lock:
            self.seen.append(path)
            if self.refusing:
                return "refuse"
            queued = self._faults.get(path)
            return queued.popleft() if queued else None

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        from_upstream: BinaryIO | None = None
        try:
            from_client = client.makefile("rb")
            while True:
                request = _read_message(from_client)
                if request is None:
                    return
                head, body = request
                path = head.split(b" ", 2)[1].split(b"?")[0].decode()
                fault = self._next_fault(path)
                if fault == "refuse":
                    return
                if fault == "500":
                    client.sendall(_ANSWER_500)
                    continue
                if upstream is None or from_upstream is None:
                    upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                    from_upstream = upstream.makefile("rb")
                upstream.sendall(head + body)
                response = _read_message(from_upstream)
                if response is None or fault == "drop_reply":
                    return  # the server acted; the client never hears of it
                client.sendall(response[0] + response[1])
        except OSError:
            return
        finally:
            client.close()
            if upstream is not None:
                upstream.close()
