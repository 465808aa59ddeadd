"""SkyrunClient: one method per API operation the SDK, CLI and workers use."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import TypeAdapter

from skyrun.client.base import CALLER_RETRIES, BaseClient
from skyrun.client.blocks import BlocksClientMixin
from skyrun.client.errors import ObjectNotFound
from skyrun.client.work import WorkClientMixin
from skyrun.schemas.api_keys import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyScope
from skyrun.schemas.artifacts import Artifact, ArtifactCreate
from skyrun.schemas.core import (
    Batch,
    Flow,
    FlowCreate,
    FlowRun,
    FlowRunCreate,
    FlowRunFilter,
    Log,
    Page,
    TaskRun,
)
from skyrun.schemas.orchestration import SetStateRequest, SetStateResponse
from skyrun.schemas.states import State, StateCreate
from skyrun.schemas.variables import Variable, VariableSet
from skyrun.settings import Settings, get_settings

_STATES = TypeAdapter(list[State])
_LOGS = TypeAdapter(list[Log])
_KEYS = TypeAdapter(list[ApiKey])


class SkyrunClient(WorkClientMixin, BlocksClientMixin, BaseClient):
    """Every API operation: core records here; work pools, deployments and blocks in mixins."""

    # Flows and flow runs
    def create_flow(self, name: str, tags: list[str] | None = None) -> Flow:
        # Get-or-create by name: a repeat finds the flow the first one made.
        return self.post_model(
            Flow, "flows", FlowCreate(name=name, tags=tags or []), idempotent=True
        )

    def read_flow(self, flow_id: uuid.UUID) -> Flow:
        return self.get_model(Flow, f"flows/{flow_id}")

    def create_flow_run(self, data: FlowRunCreate) -> FlowRun:
        """Create a flow run. Its id is chosen here, so a repeat after a lost reply
        returns the run the first request made instead of making a second."""
        if data.id is None:
            data = data.model_copy(update={"id": uuid.uuid4()})
        return self.post_model(FlowRun, "flow_runs", data, idempotent=True)

    def read_flow_run(
        self, flow_run_id: uuid.UUID | str, *, retry_for: float | None = None
    ) -> FlowRun:
        return self.get_model(
            FlowRun,
            f"flow_runs/{flow_run_id}",
            retry_for=retry_for,
            waiting_for=f"reading flow run {flow_run_id}",
        )

    def filter_flow_runs(
        self, flow_run_filter: FlowRunFilter | None = None, *, retry_for: float | None = None
    ) -> Page[FlowRun]:
        # A read sent as POST (the filter is a body): repeating it is harmless.
        return self.post_model(
            Page[FlowRun],
            "flow_runs/filter",
            flow_run_filter or FlowRunFilter(),
            idempotent=True,
            retry_for=retry_for,
        )

    def set_flow_run_state(
        self,
        flow_run_id: uuid.UUID | str,
        state: StateCreate,
        *,
        force: bool = False,
        retry_for: float | None = None,
    ) -> SetStateResponse:
        """Propose a state. It carries its own id, chosen here: the server answers a
        repeat (after a lost reply) with its first answer instead of deciding again.

        `retry_for`: keep trying for that many seconds while the server does not
        answer (final states, which nothing else would report).
        """
        if state.id is None:
            state = state.model_copy(update={"id": uuid.uuid4()})
        return self.post_model(
            SetStateResponse,
            f"flow_runs/{flow_run_id}/set_state",
            SetStateRequest(state=state, force=force),
            idempotent=True,
            retry_for=retry_for,
            waiting_for=f"flow run {flow_run_id}: proposing {state.type.value}",
        )

    def heartbeat_flow_run(self, flow_run_id: uuid.UUID | str) -> State:
        """Say the run's process is alive; the answer is the run's current state."""
        return self.post_model(
            State,
            f"flow_runs/{flow_run_id}/heartbeat",
            idempotent=True,
            retry_for=CALLER_RETRIES,  # the heartbeat loop tries again at its next beat
        )

    def read_flow_run_states(self, flow_run_id: uuid.UUID | str) -> list[State]:
        return _STATES.validate_json(self.request("GET", f"flow_runs/{flow_run_id}/states").content)

    # Task runs and logs
    def send_batch(self, batch: Batch) -> dict[str, int]:
        result: dict[str, int] = self.request(
            "POST", "batch", json=batch.model_dump(mode="json")
        ).json()
        return result

    def list_task_runs(
        self, flow_run_id: uuid.UUID | str | None = None, limit: int = 200, offset: int = 0
    ) -> Page[TaskRun]:
        params = {"flow_run_id": flow_run_id, "limit": limit, "offset": offset}
        return self.get_model(Page[TaskRun], "task_runs", params=params)

    def count_task_runs(self, flow_run_id: uuid.UUID | str) -> dict[str, int]:
        """How many of a flow run's task runs are in each state type."""
        counts: dict[str, int] = self.request(
            "GET", "task_runs/counts", params={"flow_run_id": flow_run_id}
        ).json()
        return counts

    def read_task_run(self, task_run_id: uuid.UUID | str) -> TaskRun:
        return self.get_model(TaskRun, f"task_runs/{task_run_id}")

    def read_logs(
        self,
        flow_run_id: uuid.UUID | str | None = None,
        *,
        after_id: int | None = None,
        min_level: int = 0,
        limit: int = 200,
    ) -> list[Log]:
        params = {
            "flow_run_id": flow_run_id,
            "after_id": after_id,
            "min_level": min_level,
            "limit": limit,
        }
        return _LOGS.validate_json(self.request("GET", "logs", params=params).content)

    # Artifacts
    def create_artifact(self, data: ArtifactCreate) -> Artifact:
        """Store an artifact; its id is chosen here, so a repeat stores it once."""
        if data.id is None:
            data = data.model_copy(update={"id": uuid.uuid4()})
        return self.post_model(Artifact, "artifacts", data, idempotent=True)

    def list_artifacts(self, **params: Any) -> Page[Artifact]:
        return self.get_model(Page[Artifact], "artifacts", params=params)

    def read_artifact(self, artifact_id: uuid.UUID | str) -> Artifact:
        return self.get_model(Artifact, f"artifacts/{artifact_id}")

    def read_latest_artifact(self, key: str) -> Artifact:
        return self.get_model(Artifact, f"artifacts/latest/{key}")

    # Variables
    def set_variable(self, name: str, value: Any, tags: list[str] | None = None) -> Variable:
        body = VariableSet(value=value, tags=tags or []).model_dump(mode="json")
        return Variable.model_validate_json(
            self.request("PUT", f"variables/{name}", json=body).content
        )

    def read_variable(self, name: str) -> Variable:
        return self.get_model(Variable, f"variables/{name}")

    def variable_value(self, name: str) -> Any:
        """The value of Variable `name` (for templates); KeyError when there is none."""
        try:
            return self.read_variable(name).value
        except ObjectNotFound:
            raise KeyError(name) from None

    def list_variables(self, limit: int = 100, offset: int = 0) -> Page[Variable]:
        return self.get_model(
            Page[Variable], "variables", params={"limit": limit, "offset": offset}
        )

    def delete_variable(self, name: str) -> None:
        self.request("DELETE", f"variables/{name}")

    # API keys
    def create_api_key(self, name: str, scope: ApiKeyScope = ApiKeyScope.WRITE) -> ApiKeyCreated:
        return self.post_model(ApiKeyCreated, "api_keys", ApiKeyCreate(name=name, scope=scope))

    def list_api_keys(self) -> list[ApiKey]:
        return _KEYS.validate_json(self.request("GET", "api_keys").content)

    def revoke_api_key(self, name_or_id: str, *, force: bool = False) -> ApiKey:
        """Revoke a key by its name or full id; `force` to revoke the last admin key."""
        response = self.request("DELETE", f"api_keys/{name_or_id}", params={"force": force})
        return ApiKey.model_validate_json(response.content)


_clients: dict[tuple[str | None, str | None, str], SkyrunClient] = {}


def get_client(settings: Settings | None = None) -> SkyrunClient:
    """A client for the configured API, shared within the process."""
    settings = settings or get_settings()
    key = (settings.api_url, settings.api_key, settings.resolved_database_url)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = SkyrunClient(settings)
    return client
