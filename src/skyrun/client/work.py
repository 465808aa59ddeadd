"""Client methods for work pools, queues, workers, claiming and deployments."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import TypeAdapter

from skyrun.client.base import CALLER_RETRIES, BaseClient
from skyrun.schemas.core import FlowRun, Page
from skyrun.schemas.deployments import (
    Deployment,
    DeploymentCreate,
    DeploymentRunCreate,
    DeploymentUpdate,
)
from skyrun.schemas.work_pools import (
    ClaimRequest,
    ClaimResponse,
    Worker,
    WorkerHeartbeat,
    WorkPool,
    WorkPoolCreate,
    WorkPoolUpdate,
    WorkQueue,
    WorkQueueCreate,
    WorkQueueUpdate,
)

_POOLS = TypeAdapter(list[WorkPool])
_QUEUES = TypeAdapter(list[WorkQueue])
_WORKERS = TypeAdapter(list[Worker])
_RUNS = TypeAdapter(list[FlowRun])


class WorkClientMixin(BaseClient):
    """Work pools, queues, workers, claims and deployments."""

    # Work pools
    def create_work_pool(self, data: WorkPoolCreate) -> WorkPool:
        return self.post_model(WorkPool, "work_pools", data)

    def read_work_pool(self, name: str) -> WorkPool:
        return self.get_model(WorkPool, f"work_pools/{name}")

    def list_work_pools(self) -> list[WorkPool]:
        return _POOLS.validate_json(self.request("GET", "work_pools").content)

    def update_work_pool(self, name: str, data: WorkPoolUpdate) -> WorkPool:
        body = data.model_dump(mode="json", exclude_unset=True)
        return WorkPool.model_validate_json(
            self.request("PATCH", f"work_pools/{name}", json=body).content
        )

    def delete_work_pool(self, name: str) -> None:
        self.request("DELETE", f"work_pools/{name}")

    def preview_scheduled_runs(
        self, name: str, hours: float = 24.0, limit: int = 50
    ) -> list[FlowRun]:
        params = {"hours": hours, "limit": limit}
        return _RUNS.validate_json(
            self.request("GET", f"work_pools/{name}/scheduled_runs", params=params).content
        )

    # Queues
    def create_work_queue(self, pool: str, data: WorkQueueCreate) -> WorkQueue:
        return self.post_model(WorkQueue, f"work_pools/{pool}/queues", data)

    def list_work_queues(self, pool: str) -> list[WorkQueue]:
        return _QUEUES.validate_json(self.request("GET", f"work_pools/{pool}/queues").content)

    def update_work_queue(self, pool: str, queue: str, data: WorkQueueUpdate) -> WorkQueue:
        body = data.model_dump(mode="json", exclude_unset=True)
        return WorkQueue.model_validate_json(
            self.request("PATCH", f"work_pools/{pool}/queues/{queue}", json=body).content
        )

    def delete_work_queue(self, pool: str, queue: str) -> None:
        self.request("DELETE", f"work_pools/{pool}/queues/{queue}")

    # Workers
    def worker_heartbeat(
        self,
        pool: str,
        name: str,
        interval: float,
        flow_run_ids: list[uuid.UUID] | None = None,
    ) -> Worker:
        """Say the worker is alive; `flow_run_ids` (the runs it holds) keep their leases."""
        return self.post_model(
            Worker,
            f"work_pools/{pool}/workers/heartbeat",
            WorkerHeartbeat(
                name=name, heartbeat_interval=interval, flow_run_ids=flow_run_ids or []
            ),
            idempotent=True,  # it says "alive now, holding these": a repeat says it again
            retry_for=CALLER_RETRIES,  # the worker's heartbeat loop backs off itself
        )

    def list_workers(self, pool: str) -> list[Worker]:
        return _WORKERS.validate_json(self.request("GET", f"work_pools/{pool}/workers").content)

    def claim_runs(
        self,
        pool: str,
        worker_name: str,
        *,
        queues: list[str] | None = None,
        limit: int = 1,
        wait_seconds: float = 0.0,
        claim_key: str | None = None,
    ) -> ClaimResponse:
        """Claim up to `limit` due runs, waiting up to `wait_seconds` for one (long-poll).

        Safe to retry: the claim carries `claim_key` (a new one when not given),
        and the server answers a repeat with the runs the first request took.
        Pass the same key again to retry a poll whose reply was lost.
        """
        request = ClaimRequest(
            worker_name=worker_name,
            work_queue_names=queues or [],
            limit=limit,
            wait_seconds=wait_seconds,
            claim_key=claim_key or uuid.uuid4().hex,
        )
        return self.post_model(
            ClaimResponse,
            f"work_pools/{pool}/claim",
            request,
            timeout=self.settings.client_timeout + wait_seconds,
            idempotent=True,  # the key makes a repeat answer with the first claim's runs
            retry_for=CALLER_RETRIES,  # the worker's claim loop backs off itself
        )

    def set_infrastructure_id(
        self, flow_run_id: uuid.UUID | str, infrastructure_id: str
    ) -> FlowRun:
        return self.post_model(
            FlowRun,
            f"flow_runs/{flow_run_id}/infrastructure",
            {"infrastructure_id": infrastructure_id},
            idempotent=True,  # sets one column to the same value
        )

    # Deployments
    def upsert_deployment(self, data: DeploymentCreate) -> Deployment:
        # Create-or-replace by flow and name: a repeat replaces it with the same.
        return self.post_model(Deployment, "deployments", data, idempotent=True)

    def read_deployment(self, deployment_id: uuid.UUID | str) -> Deployment:
        return self.get_model(Deployment, f"deployments/{deployment_id}")

    def read_deployment_by_name(self, flow_name: str, name: str) -> Deployment:
        return self.get_model(Deployment, f"deployments/name/{flow_name}/{name}")

    def list_deployments(self, **params: Any) -> Page[Deployment]:
        return self.get_model(Page[Deployment], "deployments", params=params)

    def update_deployment(
        self, deployment_id: uuid.UUID | str, data: DeploymentUpdate
    ) -> Deployment:
        body = data.model_dump(mode="json", exclude_unset=True)
        return Deployment.model_validate_json(
            self.request("PATCH", f"deployments/{deployment_id}", json=body).content
        )

    def delete_deployment(self, deployment_id: uuid.UUID | str) -> None:
        self.request("DELETE", f"deployments/{deployment_id}")

    def create_deployment_run(
        self, deployment_id: uuid.UUID | str, data: DeploymentRunCreate | None = None
    ) -> FlowRun:
        """Create a run of a deployment. It always carries an idempotency key (one is
        made here if the caller gave none): a repeat returns the first run."""
        data = data or DeploymentRunCreate()
        if data.idempotency_key is None:
            data = data.model_copy(update={"idempotency_key": f"client-{uuid.uuid4()}"})
        return self.post_model(FlowRun, f"deployments/{deployment_id}/runs", data, idempotent=True)
