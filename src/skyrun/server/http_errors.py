"""How the API answers errors, and the OpenAPI document of those answers.

Every 422 has one shape, FastAPI's documented `HTTPValidationError`:
`{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`, whether pydantic,
the JSON decoder or a domain rule refused the input; it never echoes the input
back (which may be megabytes, or not text at all). Other errors are
`{"detail": "one sentence"}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import (
    validation_error_definition,
    validation_error_response_definition,
)
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from skyrun.server.errors import Invalid, SkyrunServerError

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {"detail": {"title": "Detail", "type": "string"}},
    "required": ["detail"],
}
_VALIDATION_REF = {"$ref": "#/components/schemas/HTTPValidationError"}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def validation_detail(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors as the API returns them: location, message and type only."""
    detail = []
    for error in errors:
        message = str(error.get("msg", "invalid value"))
        context = error.get("ctx") or {}
        if error.get("type") == "json_invalid" and "error" in context:
            message = f"invalid JSON: {context['error']}"
        location = [p if isinstance(p, str | int) else str(p) for p in error.get("loc", ())]
        detail.append(
            {"loc": location, "msg": message, "type": str(error.get("type", "value_error"))}
        )
    return detail


def validation_response(errors: Iterable[Mapping[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": validation_detail(errors)}, status_code=422)


def is_data_error(exc: DBAPIError) -> bool:
    """Whether the database refused a value itself (SQLSTATE class 22: too long, out of range).

    asyncpg's errors reach SQLAlchemy as a plain DBAPIError carrying the SQLSTATE.
    """
    if isinstance(exc, DataError):
        return True
    code = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
    return isinstance(code, str) and code.startswith("22")


def _wants_page(request: Request) -> bool:
    """A browser asking for a UI page (not the API, not a script's request)."""
    path = request.url.path
    if path == "/api" or path.startswith("/api/") or not hasattr(request.app.state, "ui"):
        return False
    return "text/html" in request.headers.get("accept", "")


def _error_page(request: Request, status_code: int, message: str) -> Response:
    from skyrun.server.ui.render import page

    heading = "Not found" if status_code == 404 else "Cannot do that"
    return page(request, "error.html", status_code=status_code, heading=heading, message=message)


def add_error_handlers(app: FastAPI) -> None:
    """Map every error a request can cause to its documented answer."""

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, exc: RequestValidationError) -> Response:
        return validation_response(exc.errors())

    @app.exception_handler(SkyrunServerError)
    async def domain_error(request: Request, exc: SkyrunServerError) -> Response:
        if _wants_page(request):
            return _error_page(request, exc.status_code, exc.message)
        if isinstance(exc, Invalid):
            return validation_response(
                [{"loc": exc.loc, "msg": exc.message, "type": "value_error"}]
            )
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)

    @app.exception_handler(IntegrityError)
    async def integrity_error(_: Request, exc: IntegrityError) -> Response:
        return JSONResponse(
            {
                "detail": "the request conflicts with existing data (a duplicate name or a missing reference)"
            },
            status_code=409,
        )

    @app.exception_handler(DBAPIError)
    async def data_error(_: Request, exc: DBAPIError) -> Response:
        # The schemas bound every value to its column; this is the net under them.
        if not is_data_error(exc):
            raise exc
        return validation_response(
            [
                {
                    "loc": ["body"],
                    "msg": "a value does not fit its database column",
                    "type": "value_error",
                }
            ]
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if exc.status_code in (404, 405) and _wants_page(request):
            return _error_page(request, 404, f"There is no page at {path}.")
        if exc.status_code in (404, 405) and path != "/api" and not path.startswith("/api/"):
            base = str(request.base_url).rstrip("/")
            return JSONResponse(
                {
                    "detail": f"no such path {path}: the skyrun API is under /api, so "
                    f"SKYRUN_API_URL probably lacks /api (use {base}/api)"
                },
                status_code=404,
            )
        return await http_exception_handler(request, exc)


def document_errors(schema: dict[str, Any], *, open_paths: Iterable[str]) -> None:
    """Add the error answers every operation can give to an OpenAPI document."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Error", ERROR_SCHEMA)
    components.setdefault("ValidationError", validation_error_definition)
    components.setdefault("HTTPValidationError", validation_error_response_definition)
    open_paths = set(open_paths)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]

            def add(status: str, description: str, ref: dict[str, Any] = _ERROR_REF) -> None:
                responses.setdefault(  # noqa: B023 - called at once, inside this iteration
                    status,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )

            if path not in open_paths:
                add("401", "No API key, or an invalid or revoked one (servers with auth)")
                add("403", "The API key's scope does not allow this request")
            if "requestBody" in operation or operation.get("parameters"):
                add("404", "Something the path, query or body names does not exist")
            if method in ("post", "put", "patch", "delete"):
                add("409", "Conflicts with existing data")
            if "requestBody" in operation:
                add("413", "The request body is larger than the server accepts")
                add("415", "The body was sent with a Content-Type that is not JSON")
            if "requestBody" in operation or operation.get("parameters"):
                add("422", "Validation Error", _VALIDATION_REF)
