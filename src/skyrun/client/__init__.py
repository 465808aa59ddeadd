"""The API client: HTTP to a server, or in-process to the embedded database."""

import sys

# httpx's __init__ imports its command-line tool, and with it rich, pygments and
# click (~4 MiB resident, typer installs them), whenever they are installed
# (encode/httpx#3547). The client never runs that tool: it is hidden while httpx
# loads, so `httpx.main` is httpx's stub that says how to install the CLI, and a
# later `import httpx._main` still works.
if "httpx" not in sys.modules:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx  # noqa: F401
    finally:
        del sys.modules["httpx._main"]
