"""The emulator's ASGI app: Cloud Run Admin API v2 routes, auth, faults and errors.

Paths are Google's (`/v2/projects/{project}/locations/{region}/jobs/...`); any
project is served, and the regions of `EmulatorConfig.regions` (Cloud Run's own by
default; 404 NOT_FOUND elsewhere). Request bodies are parsed with Google's message
types, unknown fields refused, so a misspelt field is a 400 INVALID_ARGUMENT as it
is at Google; enums may be integers or names. Answers are Google's REST JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from google.cloud import run_v2
from google.longrunning import operations_pb2
from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from skyrun.integrations.gcp.emulator.auth import ServiceAccountAuth
from skyrun.integrations.gcp.emulator.config import EmulatorConfig
from skyrun.integrations.gcp.emulator.executor import Executor
from skyrun.integrations.gcp.emulator.faults import FaultBook, parse_fault
from skyrun.integrations.gcp.emulator.service import Service
from skyrun.integrations.gcp.emulator.state import ApiError, Store, message_json
from skyrun.integrations.gcp.emulator.templates import invalid

PARENT = r"/v2/(?P<parent>projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+))"
JOB = PARENT + r"/jobs/(?P<job>[^/:]+)"
EXECUTION = JOB + r"/executions/(?P<execution>[^/:]+)"
OPERATION = PARENT + r"/operations/(?P<operation>[^/:]+)"
DEFAULT_PAGE_SIZE = 100
MAX_WAIT_SECONDS = 60.0
logger = logging.getLogger("skyrun.cloud_run_emulator")

Handler = Callable[[Request, dict[str, str]], Awaitable[Any]]


def parse(message_type: Any, text: bytes | str) -> Any:
    """A run_v2 message from a JSON body; 400 INVALID_ARGUMENT naming what is wrong."""
    try:
        return message_type.from_json(text or "{}", ignore_unknown_fields=False)
    except (json_format.ParseError, ValueError) as exc:
        raise invalid(f"Invalid JSON payload received. {exc}") from exc


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _page(request: Request, items: list[Any], key: str) -> dict[str, Any]:
    # The page token is the offset of the page's first item.
    try:
        size = int(request.query_params.get("pageSize") or DEFAULT_PAGE_SIZE)
        start = int(request.query_params.get("pageToken") or 0)
    except ValueError:
        raise invalid("pageSize and pageToken must be the values the API gave.") from None
    size = size if size > 0 else DEFAULT_PAGE_SIZE
    body: dict[str, Any] = {key: [message_json(item) for item in items[start : start + size]]}
    if start + size < len(items):
        body["nextPageToken"] = str(start + size)
    return body


class EmulatorApp:
    """The ASGI callable (see `create_emulator_app`)."""

    def __init__(self, config: EmulatorConfig) -> None:
        config.work_dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.store = Store(config.work_dir / "state.json" if config.persist else None)
        self.faults = FaultBook()
        self.executor = Executor(self.store, config, self.store.save)
        self.service = Service(config, self.store, self.executor, self.faults)
        self.auth = (
            ServiceAccountAuth(config.service_account_key) if config.service_account_key else None
        )
        self.routes: list[tuple[str, re.Pattern[str], str, Handler]] = [
            (verb, re.compile(pattern + "$"), method, handler)
            for verb, pattern, method, handler in [
                ("POST", PARENT + "/jobs", "jobs.create", self.create_job),
                ("GET", PARENT + "/jobs", "jobs.list", self.list_jobs),
                ("GET", JOB, "jobs.get", self.get_job),
                ("PATCH", JOB, "jobs.patch", self.patch_job),
                ("DELETE", JOB, "jobs.delete", self.delete_job),
                ("POST", JOB + ":run", "jobs.run", self.run_job),
                ("GET", JOB + "/executions", "executions.list", self.list_executions),
                ("GET", EXECUTION, "executions.get", self.get_execution),
                ("DELETE", EXECUTION, "executions.delete", self.delete_execution),
                ("POST", EXECUTION + ":cancel", "executions.cancel", self.cancel_execution),
                ("GET", PARENT + "/operations", "operations.list", self.list_operations),
                ("GET", OPERATION, "operations.get", self.get_operation),
                ("POST", OPERATION + ":wait", "operations.wait", self.wait_operation),
            ]
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        request = Request(scope, receive)
        path = request.url.path
        if path.startswith("/_emulator/"):
            response = await self._emulator_endpoint(request, path)
        elif self.auth is not None and path == self.auth.token_path and request.method == "POST":
            # A urlencoded form, parsed here: Starlette's form parser needs python-multipart.
            form = dict(parse_qsl((await request.body()).decode()))
            status, body = self.auth.grant(form)
            response = JSONResponse(body, status_code=status)
        else:
            api_response = await self._api_call(request, path, receive)
            if api_response is None:
                return
            response = api_response
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.service.recover()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.executor.close()
                self.store.save()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _route(self, verb: str, path: str) -> tuple[str, Handler, dict[str, str]]:
        for route_verb, pattern, method, handler in self.routes:
            match = pattern.match(path)
            if match and route_verb == verb:
                return method, handler, match.groupdict()
        raise ApiError(
            404, "NOT_FOUND", f"The URL {verb} {path} is not part of the Cloud Run Admin API v2."
        )

    async def _api_call(self, request: Request, path: str, receive: Receive) -> Response | None:
        try:
            method, handler, params = self._route(request.method, path)
            fault = self.faults.on_call(method, params.get("project"))
            if fault is not None and fault.status is not None:
                raise fault.error()
            if fault is not None and fault.drop == "before":
                await self._drop(receive)
                return None
            if self.auth is not None:
                self.auth.check(request.headers.get("authorization"))
            if "parent" in params:
                self.service.parent(params["project"], params["region"])
            body = await handler(request, params)
            if fault is not None and fault.drop == "after":
                await self._drop(receive)
                return None
            return JSONResponse(body)
        except ApiError as exc:
            return JSONResponse(exc.body(), status_code=exc.code)
        except Exception as exc:
            # A bug here must still answer in Google's shape (a client maps it to
            # InternalServerError), and leave its traceback in the emulator's log.
            logger.exception("%s %s failed", request.method, path)
            error = ApiError(500, "INTERNAL", f"The emulator failed: {exc!r}")
            return JSONResponse(error.body(), status_code=500)

    async def _drop(self, receive: Receive) -> None:
        # Close the connection with no reply. uvicorn's `receive` is a method of the
        # request's cycle, which holds the connection's asyncio transport: aborting it
        # is what a server that died mid-request looks like to the client.
        transport = getattr(getattr(receive, "__self__", None), "transport", None)
        if transport is None:
            raise RuntimeError("dropping a connection needs the emulator served by uvicorn")
        transport.abort()

    async def _emulator_endpoint(self, request: Request, path: str) -> Response:
        if path == "/_emulator/calls":
            project = request.query_params.get("project")
            return JSONResponse({"calls": self.faults.calls_of(project)})
        if path == "/_emulator/executions":
            return JSONResponse({"executions": list(self.executor.finished)})
        if path != "/_emulator/faults":
            return JSONResponse({"error": f"no such emulator endpoint {path}"}, status_code=404)
        if request.method == "POST":
            try:
                self.faults.add(parse_fault(json.loads(await request.body() or b"null")))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        elif request.method == "DELETE":
            self.faults.pending.clear()
        return JSONResponse({"faults": self.faults.describe()})

    async def create_job(self, request: Request, params: dict[str, str]) -> Any:
        job = parse(run_v2.Job, await request.body())
        query = request.query_params
        return self.service.create_job(
            params["parent"], query.get("jobId", ""), job, _truthy(query.get("validateOnly"))
        )

    async def list_jobs(self, request: Request, params: dict[str, str]) -> Any:
        return _page(request, self.store.jobs_in(params["parent"]), "jobs")

    async def get_job(self, request: Request, params: dict[str, str]) -> Any:
        return message_json(self.store.job(f"{params['parent']}/jobs/{params['job']}"))

    async def patch_job(self, request: Request, params: dict[str, str]) -> Any:
        job = parse(run_v2.Job, await request.body())
        name = f"{params['parent']}/jobs/{params['job']}"
        query = request.query_params
        return self.service.update_job(
            name, job, _truthy(query.get("allowMissing")), _truthy(query.get("validateOnly"))
        )

    async def delete_job(self, request: Request, params: dict[str, str]) -> Any:
        return await self.service.delete_job(f"{params['parent']}/jobs/{params['job']}")

    async def run_job(self, request: Request, params: dict[str, str]) -> Any:
        run_request = parse(run_v2.RunJobRequest, await request.body())
        return self.service.run_job(
            f"{params['parent']}/jobs/{params['job']}", run_request.overrides
        )

    async def list_executions(self, request: Request, params: dict[str, str]) -> Any:
        job = self.store.job(f"{params['parent']}/jobs/{params['job']}")
        return _page(request, self.store.executions_of(job.name), "executions")

    def _execution_name(self, params: dict[str, str]) -> str:
        return f"{params['parent']}/jobs/{params['job']}/executions/{params['execution']}"

    async def get_execution(self, request: Request, params: dict[str, str]) -> Any:
        return message_json(self.store.execution(self._execution_name(params)))

    async def delete_execution(self, request: Request, params: dict[str, str]) -> Any:
        return await self.service.delete_execution(self._execution_name(params))

    async def cancel_execution(self, request: Request, params: dict[str, str]) -> Any:
        parse(run_v2.CancelExecutionRequest, await request.body())
        return await self.service.cancel_execution(self._execution_name(params))

    async def list_operations(self, request: Request, params: dict[str, str]) -> Any:
        prefix = params["parent"] + "/operations/"
        operations = [op for name, op in self.store.operations.items() if name.startswith(prefix)]
        body = {"operations": [self.store.render_operation(op) for op in operations]}
        return body

    async def get_operation(self, request: Request, params: dict[str, str]) -> Any:
        name = f"{params['parent']}/operations/{params['operation']}"
        return self.store.render_operation(self.store.operation(name))

    async def wait_operation(self, request: Request, params: dict[str, str]) -> Any:
        wait = operations_pb2.WaitOperationRequest()
        try:
            json_format.Parse(await request.body() or b"{}", wait)
        except json_format.ParseError as exc:
            raise invalid(f"Invalid JSON payload received. {exc}") from exc
        operation = self.store.operation(f"{params['parent']}/operations/{params['operation']}")
        seconds = wait.timeout.ToTimedelta().total_seconds() if wait.HasField("timeout") else 0
        limit = min(seconds or MAX_WAIT_SECONDS, MAX_WAIT_SECONDS)
        try:
            await asyncio.wait_for(operation.finished.wait(), limit)
        except TimeoutError:
            pass
        return self.store.render_operation(operation)


def create_emulator_app(config: EmulatorConfig) -> EmulatorApp:
    """The Cloud Run emulator as an ASGI app (serve it with uvicorn, lifespan on).

    Args:
        config: what it serves and how it runs tasks.
    """
    return EmulatorApp(config)
