"""Rendering the UI's pages: one Jinja2 environment (autoescaped, strict), the security headers.

Every value a template prints is escaped unless it is `Markup` made by
ui/markdown.py (sanitised). Pages carry no inline script: the Content-Security-Policy
allows scripts from this origin only, so an injected `<script>` or `onerror=` never runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from skyrun.schemas.states import utcnow
from skyrun.server.ui.infrastructure import describe as describe_infrastructure

UI_DIR = Path(__file__).parent
TEMPLATES = UI_DIR / "templates"
STATIC = UI_DIR / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        # Inline style attributes only (bar widths in charts); no inline script anywhere.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """`when` relative to now: '12s ago', 'in 3m', '-' for none."""
    if when is None:
        return "-"
    seconds = ((now or utcnow()) - when).total_seconds()
    future = seconds < 0
    text = duration(abs(seconds))
    return f"in {text}" if future else f"{text} ago"


def duration(seconds: float | None) -> str:
    """A duration as people read it: 0.42s, 12s, 3m 05s, 2h 10m, 3d 4h."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def timestamp(when: datetime | None) -> str:
    """A UTC timestamp to the second (the page's script shows it in local time)."""
    if when is None:
        return "-"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty_json(value: Any) -> str:
    """A JSON value indented for a <pre> (escaped by the template like any text)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=ago, duration=duration, timestamp=timestamp, pretty_json=pretty_json)
    env.globals["isoformat"] = lambda when: when.isoformat() if when else ""
    env.globals["describe_infrastructure"] = describe_infrastructure
    # The shared macros, for every template and every fragment rendered alone (a block
    # rendered by render_block does not run its template's top-level imports).
    env.globals["ui"] = env.get_template("macros.html").make_module({})
    return env


def render_html(request: Request, template: str, **context: Any) -> str:
    """A template rendered with what every page needs (the request, the session's CSRF token)."""
    session = getattr(request.state, "ui_session", None)
    return (
        environment()
        .get_template(template)
        .render(
            request=request,
            csrf_token=session.csrf if session is not None else "",
            auth_enabled=request.app.state.settings.server_auth_enabled,
            **context,
        )
    )


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A whole page, or one fragment of it when asked with `?fragment=NAME`.

    A template names its live parts with `{% block fragment_NAME %}`; the page's
    script re-fetches them when the server says something changed.
    """
    fragment = request.query_params.get("fragment")
    if fragment:
        html = render_block(request, template, f"fragment_{fragment}", **context)
    else:
        html = render_html(request, template, **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def render_block(request: Request, template: str, block: str, **context: Any) -> str:
    """One `{% block %}` of a template, rendered alone (a live fragment)."""
    compiled = environment().get_template(template)
    if block not in compiled.blocks:
        return ""
    session = getattr(request.state, "ui_session", None)
    ctx = compiled.new_context(
        {
            "request": request,
            "csrf_token": session.csrf if session is not None else "",
            "auth_enabled": request.app.state.settings.server_auth_enabled,
            **context,
        }
    )
    return "".join(compiled.blocks[block](ctx))


def safe(html: str) -> Markup:
    """Mark HTML as already safe: only for output of ui/markdown.py's sanitiser."""
    return Markup(html)
