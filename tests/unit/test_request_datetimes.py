"""Datetimes a client sends without a time zone are taken as UTC, in every request schema."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from skyrun.schemas.core import Batch, FlowRunCreate, FlowRunFilter, LogCreate, TaskRunRecord
from skyrun.schemas.deployments import DeploymentRunCreate
from skyrun.schemas.orchestration import SetStateRequest
from skyrun.schemas.states import State, StateCreate
from skyrun.server.app import create_app
from skyrun.settings import Settings

NAIVE = "2030-01-01T09:00:00"
AS_UTC = datetime(2030, 1, 1, 9, tzinfo=UTC)
RUN_ID = str(uuid.uuid4())


def record() -> dict[str, Any]:
    state = {"type": "PENDING", "name": "Pending", "timestamp": NAIVE}
    return {"id": RUN_ID, "flow_run_id": RUN_ID, "name": "t", "task_key": "t", "states": [state]}


# (model, JSON body, the datetime read back from the validated model)
CASES: list[tuple[type[BaseModel], dict[str, Any], Callable[[Any], datetime | None]]] = [
    (StateCreate, {"type": "RUNNING", "timestamp": NAIVE}, lambda m: m.timestamp),
    (StateCreate, {"type": "SCHEDULED", "scheduled_time": NAIVE}, lambda m: m.scheduled_time),
    (State, {"type": "RUNNING", "name": "Running", "timestamp": NAIVE}, lambda m: m.timestamp),
    (
        State,
        {"type": "SCHEDULED", "name": "Scheduled", "scheduled_time": NAIVE},
        lambda m: m.scheduled_time,
    ),
    (
        FlowRunCreate,
        {"flow_id": RUN_ID, "state": {"type": "SCHEDULED", "scheduled_time": NAIVE}},
        lambda m: m.state.scheduled_time,
    ),
    (
        SetStateRequest,
        {"state": {"type": "RUNNING", "timestamp": NAIVE}},
        lambda m: m.state.timestamp,
    ),
    (FlowRunFilter, {"expected_start_before": NAIVE}, lambda m: m.expected_start_before),
    (FlowRunFilter, {"expected_start_after": NAIVE}, lambda m: m.expected_start_after),
    (TaskRunRecord, record() | {"start_time": NAIVE}, lambda m: m.start_time),
    (TaskRunRecord, record() | {"end_time": NAIVE}, lambda m: m.end_time),
    (TaskRunRecord, record(), lambda m: m.states[0].timestamp),
    (
        LogCreate,
        {"name": "n", "level": 20, "message": "m", "timestamp": NAIVE},
        lambda m: m.timestamp,
    ),
    (
        Batch,
        {"logs": [{"name": "n", "level": 20, "message": "m", "timestamp": NAIVE}]},
        lambda m: m.logs[0].timestamp,
    ),
    (DeploymentRunCreate, {"scheduled_time": NAIVE}, lambda m: m.scheduled_time),
    (
        DeploymentRunCreate,
        {"state": {"type": "SCHEDULED", "scheduled_time": NAIVE}},
        lambda m: m.state.scheduled_time,
    ),
]


@pytest.mark.parametrize(("model", "payload", "read"), CASES)
def test_naive_time_in_a_request_body_is_utc(
    model: type[BaseModel], payload: dict[str, Any], read: Callable[[Any], datetime | None]
) -> None:
    value = read(model.model_validate_json(json.dumps(payload)))
    assert value == AS_UTC and value is not None and value.utcoffset() == timedelta(0)
    # Python-mode validation, which models built in the SDK and the CLI go through, agrees.
    assert read(model.model_validate(payload)) == AS_UTC


@pytest.mark.parametrize(
    "far",
    [
        "9999-12-31T23:59:59-12:00",  # past Python's largest datetime once in UTC
        "0001-01-01T00:00:00+14:00",  # before its smallest
        "9999-12-31T23:59:59",  # representable, but a lease or an interval added overflows
        "0001-01-01T00:00:00",
    ],
)
@pytest.mark.parametrize(("model", "payload", "read"), CASES)
def test_a_time_at_the_edge_of_the_calendar_is_refused_with_the_range(
    model: type[BaseModel],
    payload: dict[str, Any],
    read: Callable[[Any], datetime | None],
    far: str,
) -> None:
    body = json.dumps(payload).replace(NAIVE, far)
    with pytest.raises(
        ValidationError, match=r"out of range: give one between 0001-01-02 and 9998-12-31"
    ):
        model.model_validate_json(body)


def test_the_edges_themselves_are_accepted() -> None:
    for edge in ("0001-01-02T00:00:00Z", "9998-12-31T00:00:00Z", "9998-12-31T10:00:00+10:00"):
        assert StateCreate.model_validate({"type": "RUNNING", "timestamp": edge}).timestamp


def test_naive_datetime_object_is_utc() -> None:
    run = DeploymentRunCreate(scheduled_time=datetime(2030, 1, 1, 9))
    assert run.scheduled_time == AS_UTC and run.scheduled_time.tzinfo is UTC


def test_a_given_time_zone_is_kept() -> None:
    east = timezone(timedelta(hours=2))
    state = StateCreate.model_validate(
        {"type": "RUNNING", "timestamp": "2030-01-01T11:00:00+02:00"}
    )
    assert state.timestamp == AS_UTC and state.timestamp is not None
    assert state.timestamp.utcoffset() == east.utcoffset(None)


def date_time_schemas(node: Any, components: dict[str, Any], seen: set[str]) -> Iterator[Any]:
    """Every `date-time` schema reachable from `node`, following $refs once each."""
    if isinstance(node, list):
        for item in node:
            yield from date_time_schemas(item, components, seen)
    elif isinstance(node, dict):
        if node.get("format") == "date-time":
            yield node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            seen.add(ref)
            yield from date_time_schemas(components[ref.rsplit("/", 1)[-1]], components, seen)
        for value in node.values():
            yield from date_time_schemas(value, components, seen)


def test_every_request_datetime_is_documented_as_utc(tmp_path: Path) -> None:
    document = create_app(Settings(home=tmp_path), run_services=False).openapi()
    components = document["components"]["schemas"]
    requests = [
        [operation.get("requestBody"), operation.get("parameters")]
        for item in document["paths"].values()
        for operation in item.values()
    ]
    found = list(date_time_schemas(requests, components, set()))
    assert len(found) >= 9  # the state, filter, task run, log and deployment run times
    for schema in found:
        assert "without a time zone is taken as UTC" in schema.get("description", ""), schema
