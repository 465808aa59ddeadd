"""Variables and API keys: /api/variables, /api/api_keys."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from skyrun.schemas.api_keys import ApiKey, ApiKeyCreate, ApiKeyCreated
from skyrun.schemas.core import Page
from skyrun.schemas.variables import Variable, VariableSet, check_variable_name
from skyrun.server.api.deps import ApiRoute, Offset, transaction
from skyrun.server.db import api_keys, variables
from skyrun.server.errors import Invalid

router = APIRouter(tags=["variables and API keys"], route_class=ApiRoute)


def _valid_name(name: str) -> str:
    try:
        return check_variable_name(name)
    except ValueError as exc:
        raise Invalid(str(exc), loc=("path", "name")) from exc


@router.put("/variables/{name}", response_model=Variable)
async def set_variable(request: Request, name: str, body: VariableSet) -> Variable:
    async with transaction(request) as session:
        return await variables.set_variable(session, _valid_name(name), body)


@router.get("/variables", response_model=Page[Variable])
async def list_variables(
    request: Request, limit: int = Query(100, ge=1, le=1000), offset: Offset = 0
) -> Page[Variable]:
    async with transaction(request) as session:
        items, count = await variables.list_variables(session, limit, offset)
    return Page[Variable](items=items, count=count, limit=limit, offset=offset)


@router.get("/variables/{name}", response_model=Variable)
async def read_variable(request: Request, name: str) -> Variable:
    async with transaction(request) as session:
        return await variables.read_variable(session, name)


@router.delete("/variables/{name}", status_code=204)
async def delete_variable(request: Request, name: str) -> Response:
    async with transaction(request) as session:
        await variables.delete_variable(session, name)
    return Response(status_code=204)


@router.post("/api_keys", response_model=ApiKeyCreated, status_code=201)
async def create_api_key(request: Request, body: ApiKeyCreate) -> ApiKeyCreated:
    """Create a key (admin scope needed); its secret is in this answer only."""
    async with transaction(request) as session:
        return await api_keys.create_api_key(session, body.name, body.scope)


@router.get("/api_keys", response_model=list[ApiKey])
async def list_api_keys(request: Request) -> list[ApiKey]:
    async with transaction(request) as session:
        return await api_keys.list_api_keys(session)


@router.delete("/api_keys/{name_or_id}", response_model=ApiKey)
async def revoke_api_key(
    request: Request,
    name_or_id: str,
    force: bool = Query(False, description="Revoke even the last live admin key."),
) -> ApiKey:
    """Revoke a key by its name or its full id; it stops working at once on this server."""
    async with transaction(request) as session:
        revoked = await api_keys.revoke_api_key(session, name_or_id, force=force)
    auth = getattr(request.app.state, "api_key_auth", None)
    if auth is not None:
        auth.forget(revoked.id)
    return revoked
