"""The HTTP transport: httpx to a skyrun server at SKYRUN_API_URL."""

from __future__ import annotations

import sys

from skyrun.client.transport import ApiRequest, Response, TransportError

# httpx's __init__ imports its command-line tool, and with it rich, pygments and
# click (~4 MiB resident, typer installs them), whenever they are installed
# (encode/httpx#3547). The client never runs that tool: it is hidden while httpx
# loads, so `httpx.main` is httpx's stub that says how to install the CLI, and a
# later `import httpx._main` still works.
if "httpx" not in sys.modules:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx
    finally:
        del sys.modules["httpx._main"]
else:
    import httpx

# Failures before any byte of the request left: the server cannot have acted on it.
# (A pool timeout waits for a free connection; an unsupported scheme never connects.)
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)

_TIMEOUT_PHASES: tuple[tuple[type[httpx.TimeoutException], str], ...] = (
    (httpx.ConnectTimeout, "connecting"),
    (httpx.WriteTimeout, "sending the request"),
    (httpx.ReadTimeout, "waiting for the answer"),
    (httpx.PoolTimeout, "waiting for a free connection"),
)


class HttpTransport:
    """Requests to `base_url` over one pooled httpx client."""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        base_url = base_url.rstrip("/") + "/"
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            # Plain HTTP uses no certificates: not loading the CA bundle saves
            # ~50 ms of every CLI command and flow-run start.
            verify=not base_url.startswith("http://"),
        )

    def send(self, request: ApiRequest) -> Response:
        url = f"{request.path}?{request.query}" if request.query else request.path
        timeout = request.timeout
        try:
            answer = self._http.request(
                request.method,
                url,
                content=request.body,
                headers=request.headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._timeout if timeout is None else timeout) from exc
        return Response(answer.status_code, answer.content, dict(answer.headers))

    def close(self) -> None:
        self._http.close()


def transport_error(exc: httpx.HTTPError, timeout: float) -> TransportError:
    """The client's own error for an httpx failure: whether it may have reached the server,
    and, for a timeout, what the client was doing when it ran out of time."""
    not_sent = isinstance(exc, _NOT_SENT)
    # A zero timeout puts httpx's sockets in non-blocking mode: the first wait fails
    # with EINPROGRESS/EAGAIN (a ConnectError or ReadError) instead of a timeout.
    zero_timeout = _caused_by(exc, BlockingIOError)
    if isinstance(exc, httpx.TimeoutException) or zero_timeout:
        phase = next(
            (what for kind, what in _TIMEOUT_PHASES if isinstance(exc, kind)),
            "connecting" if not_sent else "waiting for the answer",
        )
        return TransportError(
            f"timed out after {timeout:g}s {phase}", maybe_sent=not not_sent, timed_out=True
        )
    return TransportError(str(exc) or type(exc).__name__, maybe_sent=not not_sent)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # httpx wraps httpcore's error, which wraps the socket's
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
