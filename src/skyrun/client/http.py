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


class HttpTransport:
    """Requests to `base_url` over one pooled httpx client."""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        base_url = base_url.rstrip("/") + "/"
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
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise TransportError(str(exc)) from exc
        return Response(answer.status_code, answer.content)

    def close(self) -> None:
        self._http.close()
