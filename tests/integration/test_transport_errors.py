"""Every way an HTTP request can fail becomes the client's TransportError, saying whether the
server may have received it; answers keep their headers (Retry-After). Real sockets only."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from processes import free_port
from skyrun.client.embedded import EmbeddedTransport
from skyrun.client.http import HttpTransport
from skyrun.client.transport import ApiRequest, TransportError
from skyrun.settings import Settings

GET = ApiRequest("GET", "health", "", None, {}, None)
Handler = Callable[[socket.socket], None]
Listen = Callable[[Handler], int]


@pytest.fixture
def listener() -> Iterator[Listen]:
    """`listen(handle)`: a loopback port whose every connection is given to `handle`."""
    sockets: list[socket.socket] = []

    def listen(handle: Handler) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        sockets.append(server)

        def accept() -> None:
            while True:
                try:
                    connection, _ = server.accept()
                except OSError:
                    return
                sockets.append(connection)
                threading.Thread(target=handle, args=(connection,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        port: int = server.getsockname()[1]
        return port

    yield listen
    for sock in sockets:
        sock.close()


def read_request(connection: socket.socket) -> None:
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                return
            data += chunk
    except OSError:
        return  # closed when the test ended


def send_error(port: int, timeout: float = 5.0) -> TransportError:
    transport = HttpTransport(f"http://127.0.0.1:{port}/api", timeout=timeout)
    try:
        with pytest.raises(TransportError) as error:
            transport.send(GET)
        return error.value
    finally:
        transport.close()


def test_a_refused_connection_was_surely_not_sent() -> None:
    error = send_error(free_port())
    assert not error.maybe_sent and not error.timed_out
    assert "refused" in str(error).lower()


def test_a_connection_closed_without_an_answer_may_have_been_processed(listener: Listen) -> None:
    def close_after_reading(connection: socket.socket) -> None:
        read_request(connection)
        connection.close()

    error = send_error(listener(close_after_reading))
    assert error.maybe_sent and not error.timed_out


def test_a_read_timeout_may_have_been_processed_and_says_what_timed_out(listener: Listen) -> None:
    answered = threading.Event()

    def never_answer(connection: socket.socket) -> None:
        read_request(connection)
        answered.wait(30)

    try:
        error = send_error(listener(never_answer), timeout=0.5)
    finally:
        answered.set()
    assert error.maybe_sent and error.timed_out
    assert str(error) == "timed out after 0.5s waiting for the answer"


def test_a_zero_timeout_is_reported_as_a_timeout(listener: Listen) -> None:
    """httpx gives a zero timeout as non-blocking sockets (EINPROGRESS), not as a timeout."""
    error = send_error(listener(read_request), timeout=0)
    assert error.timed_out and not error.maybe_sent
    assert str(error) == "timed out after 0s connecting"


def test_http_answers_keep_their_headers(listener: Listen) -> None:
    def busy(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n"
        )

    transport = HttpTransport(f"http://127.0.0.1:{listener(busy)}/api", timeout=5)
    try:
        response = transport.send(GET)
    finally:
        transport.close()
    assert (response.status_code, response.retry_after) == (503, 2.0)


def test_embedded_answers_keep_their_headers_and_a_closed_backend_was_not_sent(
    tmp_path: Path,
) -> None:
    transport = EmbeddedTransport(Settings(home=tmp_path, api_url=None))
    response = transport.send(GET)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    transport.close()
    with pytest.raises(TransportError) as error:
        transport.send(GET)
    assert not error.value.maybe_sent
