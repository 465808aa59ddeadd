"""What every route needs: strict JSON bodies, bounded query values, the database, a transaction."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.limits import MAX_LIST_OFFSET, check_json_value
from skyrun.server.db.engine import Database
from skyrun.server.errors import SkyrunServerError

M = TypeVar("M", bound=BaseModel)

# Query values, bounded to what the database can compare against (a 64-bit integer).
Offset = Annotated[int, Query(ge=0, le=MAX_LIST_OFFSET, description="Items to skip.")]
MAX_ROW_ID = 2**63 - 1


def decode_json(body: bytes) -> Any:
    """A request body as the API accepts JSON: UTF-8, finite numbers, not nested too deeply.

    Python's decoder alone takes `NaN`, `Infinity` and `1e400` (read as infinity),
    which no JSON column can store faithfully.

    Raises:
        json.JSONDecodeError: FastAPI answers it as a 422 at ("body", position).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(
            f"the body is not UTF-8 text (byte {exc.start} is {body[exc.start : exc.start + 1]!r})",
            "",
            exc.start,
        ) from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("the JSON is nested too deeply", text, 0) from None
    try:
        return check_json_value(value)
    except ValueError as exc:
        raise json.JSONDecodeError(str(exc), text, 0) from None


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class ApiRoute(APIRoute):
    """Every API route: its JSON body is decoded by decode_json (routers set route_class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict_handler


class NotJSON(SkyrunServerError):
    """A body sent as something other than JSON (a cross-site form's text/plain)."""

    status_code = 415


def require_json(request: Request) -> None:
    """Refuse a body whose Content-Type is set and is not JSON.

    The routes that read their raw body (batches, logs) would otherwise take JSON
    sent as text/plain, which any web page can make a browser send cross-site, to a
    server without auth, with no CORS check first. FastAPI's own body parsing already
    refuses it for every other route.

    Raises:
        NotJSON: A 415 naming the type sent.
    """
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise NotJSON(
            f"the body was sent as {media or 'an empty type'}; send it as JSON with "
            "'Content-Type: application/json'"
        )


async def parse_json_body(request: Request, model: type[M]) -> M:
    """Validate the raw body in pydantic-core's JSON mode (for large, hot bodies).

    Its decoder refuses invalid UTF-8 and deep nesting itself; the model's types
    refuse NaN and infinities (schemas/limits.py). Errors come back as the usual
    422 with each field's location.
    """
    require_json(request)
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


# Models documented by body_schema; the app adds them to the OpenAPI components.
EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {}


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI `requestBody` for a route that parses its body with parse_json_body."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    EXTRA_SCHEMAS.update(schema.pop("$defs", {}))
    EXTRA_SCHEMAS[model.__name__] = schema
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


@asynccontextmanager
async def transaction(request: Request) -> AsyncIterator[AsyncSession]:
    """A session in one transaction: committed when the block ends, rolled back on error."""
    async with database(request).session() as session, session.begin():
        yield session


@asynccontextmanager
async def reading(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only session in one transaction (UI pages): on SQLite it takes no write lock."""
    async with database(request).read_session() as session, session.begin():
        yield session
