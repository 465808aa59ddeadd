"""ORM models for every table skyrun stores. Only server/db/ imports this."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from skyrun.schemas.states import utcnow
from skyrun.server.db.types import JSONType, UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s__%(column_0_N_name)s",
    "uq": "uq_%(table_name)s__%(column_0_N_name)s",
    "ck": "ck_%(table_name)s__%(constraint_name)s",
    "fk": "fk_%(table_name)s__%(column_0_name)s__%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class Flow(Base):
    __tablename__ = "flows"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created: Mapped[datetime] = _created()


class StateColumns:
    """The current state, denormalised onto a run for cheap filtering."""

    state_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, nullable=True)
    state_type: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    state_name: Mapped[str | None] = mapped_column(sa.String(50), nullable=True)
    state_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    state_message: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    state_scheduled_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    run_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    total_run_time: Mapped[float] = mapped_column(sa.Float, default=0.0)


class FlowRunLiveness:
    """Claims and heartbeats of a flow run (revision 0002: a mixin keeps them last, as
    the migration added them)."""

    # The key of the claim that made the run PENDING: a worker that retries a claim
    # whose reply was lost gets the same runs back.
    claim_key: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    # When the process executing the run last said it is alive (RUNNING runs).
    last_heartbeat: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class FlowRun(StateColumns, FlowRunLiveness, Base):
    __tablename__ = "flow_runs"
    __table_args__ = (
        sa.Index(
            "ix_flow_runs__state_type__expected_start_time", "state_type", "expected_start_time"
        ),
        sa.Index("ix_flow_runs__flow_id__created", "flow_id", "created"),
        sa.Index("ix_flow_runs__created", "created"),
        sa.Index("ix_flow_runs__work_queue_id__state_type", "work_queue_id", "state_type"),
        sa.Index("ix_flow_runs__worker_id__claim_key", "worker_id", "claim_key"),
        sa.UniqueConstraint("deployment_id", "idempotency_key"),
    )
    id: Mapped[uuid.UUID] = _id()
    flow_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("flows.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    parent_flow_run_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, nullable=True, index=True)
    parent_task_run_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, nullable=True)
    expected_start_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Deployments, work pools and workers (set for runs created from a deployment).
    deployment_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("deployments.id", ondelete="SET NULL"), nullable=True, index=True
    )
    work_queue_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("work_queues.id", ondelete="SET NULL"), nullable=True
    )
    job_variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    auto_scheduled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    worker_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, nullable=True)
    lease_expires: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    infrastructure_id: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    created: Mapped[datetime] = _created()
    updated: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class FlowRunState(Base):
    __tablename__ = "flow_run_states"
    id: Mapped[uuid.UUID] = _id()
    flow_run_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(sa.String(20))
    name: Mapped[str] = mapped_column(sa.String(50))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    message: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    scheduled_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)


class TaskRun(StateColumns, Base):
    __tablename__ = "task_runs"
    id: Mapped[uuid.UUID] = _id()
    flow_run_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    task_key: Mapped[str] = mapped_column(sa.String(300))
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Every state the task run went through, oldest first, as JSON objects: task
    # runs are written in batches of thousands, and one row each keeps that cheap.
    state_history: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created: Mapped[datetime] = _created()


class Log(Base):
    __tablename__ = "logs"
    __table_args__ = (sa.Index("ix_logs__flow_run_id__timestamp", "flow_run_id", "timestamp"),)
    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    flow_run_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), nullable=True
    )
    task_run_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, nullable=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    level: Mapped[int] = mapped_column(sa.SmallInteger)
    message: Mapped[str] = mapped_column(sa.Text)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (sa.Index("ix_artifacts__key__created", "key", "created"),)
    id: Mapped[uuid.UUID] = _id()
    key: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    type: Mapped[str] = mapped_column(sa.String(20))
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    data: Mapped[Any] = mapped_column(JSONType)
    flow_run_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("flow_runs.id", ondelete="SET NULL"), nullable=True, index=True
    )
    task_run_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, nullable=True)
    created: Mapped[datetime] = _created()


class Variable(Base):
    __tablename__ = "variables"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    value: Mapped[Any] = mapped_column(JSONType)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created: Mapped[datetime] = _created()
    updated: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(128))
    created: Mapped[datetime] = _created()
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # Space-separated scopes (read, write, admin, ...). Keys made before scopes
    # existed could do everything, so the column's default keeps them able to.
    scopes: Mapped[str] = mapped_column(sa.String(200), server_default="read write admin")


class IdempotencyKey(Base):
    """A request that must take effect once: a repeat with the same key gets `response`."""

    __tablename__ = "idempotency_keys"
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    response: Mapped[Any] = mapped_column(JSONType, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class WorkPool(Base):
    __tablename__ = "work_pools"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    type: Mapped[str] = mapped_column(sa.String(50))
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    base_job_template: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    concurrency_limit: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    is_paused: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created: Mapped[datetime] = _created()
    updated: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class WorkQueue(Base):
    __tablename__ = "work_queues"
    __table_args__ = (sa.UniqueConstraint("work_pool_id", "name"),)
    id: Mapped[uuid.UUID] = _id()
    work_pool_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("work_pools.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    priority: Mapped[int] = mapped_column(sa.Integer, default=1)
    concurrency_limit: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    is_paused: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    last_polled: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created: Mapped[datetime] = _created()


class Worker(Base):
    __tablename__ = "workers"
    __table_args__ = (sa.UniqueConstraint("work_pool_id", "name"),)
    id: Mapped[uuid.UUID] = _id()
    work_pool_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("work_pools.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20), default="ONLINE")
    heartbeat_interval: Mapped[float] = mapped_column(sa.Float, default=10.0)
    last_heartbeat: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created: Mapped[datetime] = _created()


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (sa.UniqueConstraint("flow_id", "name"),)
    id: Mapped[uuid.UUID] = _id()
    flow_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("flows.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    version: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    entrypoint: Mapped[str] = mapped_column(sa.String(1000))
    path: Mapped[str | None] = mapped_column(sa.String(1000), nullable=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    parameter_openapi_schema: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    work_queue_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("work_queues.id", ondelete="SET NULL"), nullable=True
    )
    job_variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    pull_steps: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    paused: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created: Mapped[datetime] = _created()
    updated: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # How many of its runs may be active at once (None: no limit). Last, where
    # revision 0003 added it, so a new database's columns match a migrated one's.
    concurrency_limit: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)


class DeploymentSchedule(Base):
    __tablename__ = "deployment_schedules"
    id: Mapped[uuid.UUID] = _id()
    deployment_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    schedule: Mapped[dict[str, Any]] = mapped_column(JSONType)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created: Mapped[datetime] = _created()


class BlockRecord(Base):
    """A block document (revision 0004); secret fields' values are stored encrypted."""

    __tablename__ = "blocks"
    __table_args__ = (sa.UniqueConstraint("block_type", "name"),)
    id: Mapped[uuid.UUID] = _id()
    block_type: Mapped[str] = mapped_column(sa.String(100))
    name: Mapped[str] = mapped_column(sa.String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created: Mapped[datetime] = _created()
    updated: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
