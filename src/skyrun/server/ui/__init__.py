"""The web UI: server-rendered pages at `/`, on the same origin as `/api`.

`include_ui(app)` adds the login page, the live-event stream, the static assets
and every module in `ui/pages/` (each has a `router`; its pages depend on
`require_viewer`). Pages read the database through `server/db/` like the API
does, and change things only through the API (the page's script calls `/api`
with the session cookie and the CSRF token), so the UI can do nothing the API
would refuse.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from skyrun.server.ui import pages
from skyrun.server.ui.guard import LoginRequired
from skyrun.server.ui.render import STATIC


def page_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(pages.__path__))


def include_ui(app: FastAPI) -> None:
    from skyrun.server.ui import events, login

    app.include_router(login.router)
    app.include_router(events.router)
    for name in page_modules():
        module = importlib.import_module(f"{pages.__name__}.{name}")
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.state.ui = True

    @app.exception_handler(LoginRequired)
    async def login_required(_: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(exc.location(), status_code=303)
