"""The REST API against a real database: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from skyrun.settings import Settings

ApiFor = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]

# -- helpers ----------------------------------------------------------------------


def body(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def error_locations(response: httpx.Response) -> list[tuple[Any, ...]]:
    """The `loc` of each field error in a 422 answer."""
    assert response.status_code == 422, f"{response.status_code}: {response.text}"
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return [tuple(item["loc"]) for item in detail]


def error_text(response: httpx.Response) -> str:
    """The messages of a 422 answer, which always lists its errors, joined."""
    assert response.status_code == 422, f"{response.status_code}: {response.text}"
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return "; ".join(item["msg"] for item in detail)


async def assert_422_naming(
    api: httpx.AsyncClient,
    method: str,
    path: str,
    cases: list[tuple[Any, tuple[Any, ...]]],
) -> None:
    """Each (json body, location) case is answered 422 with an error at that location."""
    wrong = []
    for payload, location in cases:
        response = await api.request(method, path, json=payload)
        if response.status_code != 422:
            wrong.append((payload, response.status_code, response.text))
            continue
        locations = [tuple(item["loc"]) for item in response.json()["detail"]]
        if not any(loc[: len(location)] == location for loc in locations):
            wrong.append((payload, location, locations))
    assert wrong == []


def iso(moment: datetime) -> str:
    return moment.isoformat()


def now() -> datetime:
    return datetime.now(UTC)


async def create_flow(api: httpx.AsyncClient, name: str = "etl") -> dict[str, Any]:
    return body(await api.post("/api/flows", json={"name": name}))


async def create_run(api: httpx.AsyncClient, flow_id: str, **fields: Any) -> dict[str, Any]:
    return body(await api.post("/api/flow_runs", json={"flow_id": flow_id, **fields}), 201)


async def set_state(
    api: httpx.AsyncClient, run_id: str, state_type: str, force: bool = False, **fields: Any
) -> dict[str, Any]:
    response = await api.post(
        f"/api/flow_runs/{run_id}/set_state",
        json={"state": {"type": state_type, **fields}, "force": force},
    )
    return body(response)


def task_run_record(
    flow_run_id: str, *states: tuple[str, str], task_run_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    start = now()
    return {
        "id": task_run_id or str(uuid.uuid4()),
        "flow_run_id": flow_run_id,
        "name": "extract-0",
        "task_key": "pipeline.extract",
        "states": [
            {
                "id": str(uuid.uuid4()),
                "type": state_type,
                "name": name,
                "timestamp": iso(start + timedelta(milliseconds=i)),
            }
            for i, (state_type, name) in enumerate(states)
        ],
        **fields,
    }


def log_line(flow_run_id: str | None, message: str, level: int = 20, **fields: Any) -> dict:
    return {
        "flow_run_id": flow_run_id,
        "name": "skyrun.flow_runs",
        "level": level,
        "message": message,
        "timestamp": iso(now()),
        **fields,
    }


# -- health -----------------------------------------------------------------------


async def test_health_and_version(api: httpx.AsyncClient) -> None:
    assert body(await api.get("/api/health")) == {"status": "ok"}
    assert body(await api.get("/api/version"))["version"]


# -- flows ------------------------------------------------------------------------


async def test_flows_are_got_or_created_by_name(api: httpx.AsyncClient) -> None:
    first = await create_flow(api, "etl")
    again = await create_flow(api, "etl")
    other = await create_flow(api, "report")
    assert first["id"] == again["id"]
    assert first["name"] == "etl"
    assert other["id"] != first["id"]

    assert body(await api.get(f"/api/flows/{first['id']}"))["name"] == "etl"
    assert body(await api.get("/api/flows/name/report"))["id"] == other["id"]
    page = body(await api.get("/api/flows", params={"limit": 1}))
    assert page["count"] == 2
    assert [f["name"] for f in page["items"]] == ["etl"]
    page = body(await api.get("/api/flows", params={"limit": 1, "offset": 1}))
    assert [f["name"] for f in page["items"]] == ["report"]


async def test_flow_tags_are_kept(api: httpx.AsyncClient) -> None:
    flow = body(await api.post("/api/flows", json={"name": "tagged", "tags": ["a", "b"]}))
    assert body(await api.get(f"/api/flows/{flow['id']}"))["tags"] == ["a", "b"]


async def test_invalid_flow_bodies_name_the_field(api: httpx.AsyncClient) -> None:
    cases: list[tuple[Any, tuple[Any, ...]]] = [
        ({}, ("body", "name")),
        ({"name": ""}, ("body", "name")),
        ({"name": "x" * 201}, ("body", "name")),
        ({"name": "x", "tags": "a"}, ("body", "tags")),
        ({"name": "x", "colour": "red"}, ("body", "colour")),
    ]
    await assert_422_naming(api, "POST", "/api/flows", cases)
    assert body(await api.get("/api/flows"))["count"] == 0


# -- flow runs --------------------------------------------------------------------


async def test_create_and_read_a_flow_run(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], parameters={"n": 3, "city": "Oslo"}, tags=["t"])
    assert run["flow_id"] == flow["id"]
    assert run["flow_name"] == "etl"
    assert run["name"]
    assert run["parameters"] == {"n": 3, "city": "Oslo"}
    assert run["tags"] == ["t"]
    assert run["state"]["type"] == "PENDING"
    assert run["state"]["name"] == "Pending"
    assert run["run_count"] == 0
    assert run["start_time"] is None
    assert run["expected_start_time"] is not None

    read = body(await api.get(f"/api/flow_runs/{run['id']}"))
    assert read == run


async def test_create_a_flow_run_with_a_given_id_and_state(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run_id = str(uuid.uuid4())
    due = now() + timedelta(hours=1)
    run = await create_run(
        api,
        flow["id"],
        id=run_id,
        name="nightly",
        state={"type": "SCHEDULED", "scheduled_time": iso(due)},
    )
    assert run["id"] == run_id
    assert run["name"] == "nightly"
    assert run["state"]["type"] == "SCHEDULED"
    assert datetime.fromisoformat(run["expected_start_time"]) == due

    # A repeat (a retry after a lost reply) gets the run the first request made.
    again = await api.post("/api/flow_runs", json={"flow_id": flow["id"], "id": run_id})
    assert again.status_code == 201
    assert again.json() == run
    # The same id for a run of another flow is a conflict.
    other = await create_flow(api, "other-flow")
    clash = await api.post("/api/flow_runs", json={"flow_id": other["id"], "id": run_id})
    assert clash.status_code == 409
    assert run_id in clash.json()["detail"] and "another flow" in clash.json()["detail"]


async def test_a_run_created_running_is_counted_as_started(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], state={"type": "RUNNING"})
    assert run["state"]["type"] == "RUNNING"
    assert run["run_count"] == 1
    assert run["start_time"] == run["state"]["timestamp"]


async def test_a_flow_run_for_an_unknown_flow_is_404(api: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    response = await api.post("/api/flow_runs", json={"flow_id": missing})
    assert response.status_code == 404
    assert missing in response.json()["detail"]


async def test_invalid_flow_run_bodies_name_the_field(api: httpx.AsyncClient) -> None:
    flow_id = (await create_flow(api))["id"]
    cases: list[tuple[Any, tuple[Any, ...]]] = [
        ({}, ("body", "flow_id")),
        ({"flow_id": "not-a-uuid"}, ("body", "flow_id")),
        ({"flow_id": flow_id, "parameters": []}, ("body", "parameters")),
        ({"flow_id": flow_id, "state": {"type": "BOGUS"}}, ("body", "state", "type")),
        (
            {"flow_id": flow_id, "state": {"type": "SCHEDULED", "scheduled_time": "soon"}},
            ("body", "state", "scheduled_time"),
        ),
        ({"flow_id": flow_id, "name": "x" * 201}, ("body", "name")),
        ({"flow_id": flow_id, "unknown_field": 1}, ("body", "unknown_field")),
        ([flow_id], ("body",)),
    ]
    await assert_422_naming(api, "POST", "/api/flow_runs", cases)
    assert body(await api.post("/api/flow_runs/filter", json={}))["count"] == 0


async def test_filter_flow_runs_paginates_and_counts(api: httpx.AsyncClient) -> None:
    etl = await create_flow(api, "etl")
    report = await create_flow(api, "report")
    etl_ids = [(await create_run(api, etl["id"]))["id"] for _ in range(5)]
    await create_run(api, report["id"])
    scheduled = await create_run(
        api, report["id"], state={"type": "SCHEDULED", "scheduled_time": iso(now())}
    )

    seen: list[str] = []
    for offset in (0, 2, 4):
        page = body(
            await api.post(
                "/api/flow_runs/filter",
                json={"flow_name": "etl", "limit": 2, "offset": offset, "sort": "created_asc"},
            )
        )
        assert page["count"] == 5
        assert (page["limit"], page["offset"]) == (2, offset)
        assert all(item["flow_name"] == "etl" for item in page["items"])
        seen += [item["id"] for item in page["items"]]
    assert len(seen) == 5
    assert set(seen) == set(etl_ids)

    everything = body(await api.post("/api/flow_runs/filter", json={}))
    assert everything["count"] == 7
    assert len(everything["items"]) == 7

    newest_first = body(await api.post("/api/flow_runs/filter", json={"flow_id": etl["id"]}))
    oldest_first = body(
        await api.post("/api/flow_runs/filter", json={"flow_id": etl["id"], "sort": "created_asc"})
    )
    assert [r["id"] for r in newest_first["items"]] == [
        r["id"] for r in reversed(oldest_first["items"])
    ]

    by_state = body(await api.post("/api/flow_runs/filter", json={"state_type": ["SCHEDULED"]}))
    assert by_state["count"] == 1
    assert [r["id"] for r in by_state["items"]] == [scheduled["id"]]

    by_both = body(
        await api.post(
            "/api/flow_runs/filter", json={"flow_name": "report", "state_type": ["PENDING"]}
        )
    )
    assert by_both["count"] == 1

    beyond = body(await api.post("/api/flow_runs/filter", json={"offset": 50}))
    assert beyond == {"items": [], "count": 7, "limit": 50, "offset": 50}

    nothing = body(await api.post("/api/flow_runs/filter", json={"flow_name": "nope"}))
    assert (nothing["items"], nothing["count"]) == ([], 0)


async def test_filter_by_state_name_and_parent(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    parent = await create_run(api, flow["id"], state={"type": "RUNNING"})
    child = await create_run(api, flow["id"], parent_flow_run_id=parent["id"])
    await set_state(api, parent["id"], "SCHEDULED", name="AwaitingRetry")

    children = body(
        await api.post("/api/flow_runs/filter", json={"parent_flow_run_id": parent["id"]})
    )
    assert [r["id"] for r in children["items"]] == [child["id"]]
    named = body(await api.post("/api/flow_runs/filter", json={"state_name": ["AwaitingRetry"]}))
    assert [r["id"] for r in named["items"]] == [parent["id"]]


async def test_invalid_filters_name_the_field(api: httpx.AsyncClient) -> None:
    cases: list[tuple[Any, tuple[Any, ...]]] = [
        ({"limit": 0}, ("body", "limit")),
        ({"limit": 1001}, ("body", "limit")),
        ({"offset": -1}, ("body", "offset")),
        ({"sort": "name_asc"}, ("body", "sort")),
        ({"state_type": ["DONE"]}, ("body", "state_type")),
        ({"flow_id": "x"}, ("body", "flow_id")),
        ({"flow_nam": "typo"}, ("body", "flow_nam")),
    ]
    await assert_422_naming(api, "POST", "/api/flow_runs/filter", cases)


# -- states -----------------------------------------------------------------------


async def test_set_state_decisions_and_history(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"])
    run_id = run["id"]

    started = await set_state(api, run_id, "RUNNING")
    assert started["decision"] == "ACCEPT"
    assert started["state"]["type"] == "RUNNING"
    read = body(await api.get(f"/api/flow_runs/{run_id}"))
    assert read["run_count"] == 1
    assert read["start_time"] == started["state"]["timestamp"]

    double = await set_state(api, run_id, "RUNNING")
    assert double["decision"] == "ABORT"
    assert double["state"]["id"] == started["state"]["id"]
    assert "already RUNNING" in double["reason"]

    done = await set_state(api, run_id, "COMPLETED", message="all good")
    assert done["decision"] == "ACCEPT"
    assert done["state"]["message"] == "all good"
    read = body(await api.get(f"/api/flow_runs/{run_id}"))
    assert read["state"]["type"] == "COMPLETED"
    assert read["end_time"] == done["state"]["timestamp"]
    assert read["total_run_time"] >= 0.0

    refused = await set_state(api, run_id, "RUNNING")
    assert refused["decision"] == "REJECT"
    assert refused["state"]["type"] == "COMPLETED"
    assert "force" in refused["reason"]

    forced = await set_state(api, run_id, "SCHEDULED", force=True, name="Rerun")
    assert forced["decision"] == "ACCEPT"
    read = body(await api.get(f"/api/flow_runs/{run_id}"))
    assert (read["state"]["type"], read["state"]["name"]) == ("SCHEDULED", "Rerun")
    assert read["end_time"] is None

    history = body(await api.get(f"/api/flow_runs/{run_id}/states"))
    assert [(s["type"], s["name"]) for s in history] == [
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("COMPLETED", "Completed"),
        ("SCHEDULED", "Rerun"),
    ]
    assert history[2]["message"] == "all good"


async def test_pending_twice_is_a_refused_double_claim(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], state={"type": "SCHEDULED"})
    assert (await set_state(api, run["id"], "PENDING"))["decision"] == "ACCEPT"
    second = await set_state(api, run["id"], "PENDING")
    assert second["decision"] == "ABORT"
    assert len(body(await api.get(f"/api/flow_runs/{run['id']}/states"))) == 2


async def test_a_run_scheduled_later_waits(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    due = now() + timedelta(hours=1)
    run = await create_run(api, flow["id"], state={"type": "SCHEDULED", "scheduled_time": iso(due)})
    waiting = await set_state(api, run["id"], "PENDING")
    assert waiting["decision"] == "WAIT"
    assert waiting["state"]["type"] == "SCHEDULED"
    assert 3000 < waiting["delay_seconds"] <= 3600
    assert body(await api.get(f"/api/flow_runs/{run['id']}"))["state"]["type"] == "SCHEDULED"


async def test_cancelling_a_scheduled_run_cancels_it(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(
        api, flow["id"], state={"type": "SCHEDULED", "scheduled_time": iso(now())}
    )
    response = await set_state(api, run["id"], "CANCELLING", message="not needed")
    assert response["decision"] == "ACCEPT"
    assert response["state"]["type"] == "CANCELLED"
    read = body(await api.get(f"/api/flow_runs/{run['id']}"))
    assert read["state"]["type"] == "CANCELLED"
    assert read["state"]["message"] == "not needed"
    assert read["end_time"] is not None


async def test_a_cancelling_run_cannot_be_started(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"])
    assert (await set_state(api, run["id"], "CANCELLING"))["decision"] == "ACCEPT"
    response = await set_state(api, run["id"], "RUNNING")
    assert response["decision"] == "ABORT"
    assert response["state"]["type"] == "CANCELLING"


async def test_invalid_set_state_bodies_name_the_field(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"])
    cases: list[tuple[Any, tuple[Any, ...]]] = [
        ({}, ("body", "state")),
        ({"state": {}}, ("body", "state", "type")),
        ({"state": {"type": "FINISHED"}}, ("body", "state", "type")),
        ({"state": {"type": "RUNNING", "timestamp": "yesterday"}}, ("body", "state", "timestamp")),
        ({"state": {"type": "RUNNING"}, "force": "maybe"}, ("body", "force")),
    ]
    await assert_422_naming(api, "POST", f"/api/flow_runs/{run['id']}/set_state", cases)
    assert len(body(await api.get(f"/api/flow_runs/{run['id']}/states"))) == 1


async def test_delete_a_flow_run(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"])
    assert (await api.delete(f"/api/flow_runs/{run['id']}")).status_code == 204
    assert (await api.get(f"/api/flow_runs/{run['id']}")).status_code == 404


NAIVE = "2030-01-01T00:00:00"
NAIVE_AS_UTC = datetime(2030, 1, 1, tzinfo=UTC)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_timestamps_without_a_time_zone_are_taken_as_utc(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    scheduled = body(
        await api.post(
            "/api/flow_runs",
            json={"flow_id": flow["id"], "state": {"type": "SCHEDULED", "scheduled_time": NAIVE}},
        ),
        201,
    )
    assert moment(scheduled["state"]["scheduled_time"]) == NAIVE_AS_UTC
    assert moment(scheduled["expected_start_time"]) == NAIVE_AS_UTC

    # Naive bounds mean UTC too: 23:30 is before the run, 23:30 an hour west of UTC after it.
    for bounds, found in [
        ({"expected_start_after": "2029-12-31T23:30:00"}, True),
        ({"expected_start_after": "2029-12-31T23:30:00-01:00"}, False),
        ({"expected_start_before": "2029-12-31T23:30:00"}, False),
        ({"expected_start_before": "2029-12-31T23:30:00-01:00"}, True),
    ]:
        page = body(await api.post("/api/flow_runs/filter", json=bounds))
        assert (scheduled["id"] in [run["id"] for run in page["items"]]) is found, bounds

    run = await create_run(api, flow["id"])
    response = body(
        await api.post(
            f"/api/flow_runs/{run['id']}/set_state",
            json={"state": {"type": "RUNNING", "timestamp": NAIVE}},
        )
    )
    assert response["decision"] == "ACCEPT"
    assert moment(response["state"]["timestamp"]) == NAIVE_AS_UTC

    body(await api.post("/api/logs", json=[log_line(run["id"], "x") | {"timestamp": NAIVE}]), 201)
    (logged,) = body(await api.get("/api/logs", params={"flow_run_id": run["id"]}))
    assert moment(logged["timestamp"]) == NAIVE_AS_UTC

    record = task_run_record(run["id"], ("PENDING", "Pending")) | {"start_time": NAIVE}
    record["states"][0]["timestamp"] = NAIVE
    body(await api.post("/api/batch", json={"task_runs": [record]}))
    task_run = body(await api.get(f"/api/task_runs/{record['id']}"))
    assert moment(task_run["start_time"]) == NAIVE_AS_UTC
    assert moment(task_run["state"]["timestamp"]) == NAIVE_AS_UTC


# -- unknown ids ------------------------------------------------------------------

MISSING = str(uuid.uuid4())


NOT_FOUND = [
    ("GET", f"/api/flows/{MISSING}", None),
    ("GET", "/api/flows/name/no-such-flow", None),
    ("GET", f"/api/flow_runs/{MISSING}", None),
    ("GET", f"/api/flow_runs/{MISSING}/states", None),
    ("POST", f"/api/flow_runs/{MISSING}/set_state", {"state": {"type": "RUNNING"}}),
    ("DELETE", f"/api/flow_runs/{MISSING}", None),
    ("GET", f"/api/task_runs/{MISSING}", None),
    ("GET", f"/api/artifacts/{MISSING}", None),
    ("GET", "/api/artifacts/latest/no-such-key", None),
    ("GET", "/api/variables/no_such_variable", None),
    ("DELETE", "/api/variables/no_such_variable", None),
    ("DELETE", "/api/api_keys/no-such-key", None),
]


async def test_unknown_ids_are_404(api: httpx.AsyncClient) -> None:
    answers = []
    for method, path, payload in NOT_FOUND:
        response = await api.request(method, path, json=payload)
        answers.append((method, path, response.status_code, "not found" in response.text))
    assert answers == [(method, path, 404, True) for method, path, _ in NOT_FOUND]


async def test_malformed_ids_are_422(api: httpx.AsyncClient) -> None:
    paths = [
        "/api/flows/123",
        "/api/flow_runs/not-a-uuid",
        "/api/flow_runs/not-a-uuid/states",
        "/api/task_runs/1",
        "/api/artifacts/x",
    ]
    for path in paths:
        locations = error_locations(await api.get(path))
        assert locations and locations[0][0] == "path", path


# -- task runs and logs: the batch endpoint ---------------------------------------


async def test_batch_records_task_runs_and_logs(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], state={"type": "RUNNING"})
    done = task_run_record(
        run["id"],
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("COMPLETED", "Completed"),
        run_count=1,
        tags=["io"],
    )
    failed = task_run_record(
        run["id"],
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        name="load-0",
        task_key="pipeline.load",
    )
    failed["states"].append(
        {"type": "FAILED", "name": "Failed", "message": "ValueError: bad", "timestamp": iso(now())}
    )
    logs = [log_line(run["id"], f"line {i}") for i in range(3)]
    logs.append(log_line(run["id"], "from a task", task_run_id=failed["id"]))

    result = body(await api.post("/api/batch", json={"task_runs": [done, failed], "logs": logs}))
    assert result == {"task_runs": 2, "logs": 4, "refused": []}

    page = body(await api.get("/api/task_runs", params={"flow_run_id": run["id"]}))
    assert page["count"] == 2
    by_id = {t["id"]: t for t in page["items"]}
    assert by_id[done["id"]]["state"]["type"] == "COMPLETED"
    assert by_id[done["id"]]["tags"] == ["io"]
    assert by_id[done["id"]]["run_count"] == 1
    assert [(h["type"], h["name"]) for h in by_id[done["id"]]["state_history"]] == [
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("COMPLETED", "Completed"),
    ]
    assert by_id[failed["id"]]["state"]["type"] == "FAILED"
    assert by_id[failed["id"]]["state"]["message"] == "ValueError: bad"
    assert by_id[failed["id"]]["name"] == "load-0"

    single = body(await api.get(f"/api/task_runs/{done['id']}"))
    assert single == by_id[done["id"]]

    stored = body(await api.get("/api/logs", params={"flow_run_id": run["id"]}))
    assert [line["message"] for line in stored] == ["line 0", "line 1", "line 2", "from a task"]
    assert [line["task_run_id"] for line in stored] == [None, None, None, failed["id"]]


async def test_task_runs_are_counted_by_state(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], state={"type": "RUNNING"})
    other = await create_run(api, flow["id"], state={"type": "RUNNING"})
    done = [("PENDING", "Pending"), ("RUNNING", "Running"), ("COMPLETED", "Completed")]
    records = [task_run_record(run["id"], *done) for _ in range(3)]
    records.append(task_run_record(run["id"], ("PENDING", "Pending"), ("RUNNING", "Running")))
    records.append(task_run_record(other["id"], *done))  # another run's: not counted
    body(await api.post("/api/batch", json={"task_runs": records, "logs": []}))

    counts = await api.get("/api/task_runs/counts", params={"flow_run_id": run["id"]})
    assert body(counts) == {"COMPLETED": 3, "RUNNING": 1}
    empty = await create_run(api, flow["id"], state={"type": "RUNNING"})
    assert body(await api.get("/api/task_runs/counts", params={"flow_run_id": empty["id"]})) == {}
    unknown = await api.get("/api/task_runs/counts", params={"flow_run_id": str(uuid.uuid4())})
    assert unknown.status_code == 404
    assert (await api.get("/api/task_runs/counts")).status_code == 422


async def test_resending_a_task_run_updates_it(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], state={"type": "RUNNING"})
    task_run_id = str(uuid.uuid4())
    first = task_run_record(
        run["id"], ("PENDING", "Pending"), ("RUNNING", "Running"), task_run_id=task_run_id
    )
    first["run_count"] = 1
    body(await api.post("/api/batch", json={"task_runs": [first]}))
    assert body(await api.get(f"/api/task_runs/{task_run_id}"))["state"]["type"] == "RUNNING"

    end = now() + timedelta(seconds=1)
    later = task_run_record(
        run["id"],
        ("SCHEDULED", "AwaitingRetry"),
        ("RUNNING", "Retrying"),
        ("COMPLETED", "Completed"),
        task_run_id=task_run_id,
        run_count=2,
        end_time=iso(end),
        total_run_time=1.5,
        name="ignored-on-update",
    )
    assert body(await api.post("/api/batch", json={"task_runs": [later]})) == {
        "task_runs": 1,
        "logs": 0,
        "refused": [],
    }
    page = body(await api.get("/api/task_runs", params={"flow_run_id": run["id"]}))
    assert page["count"] == 1
    updated = page["items"][0]
    assert updated["id"] == task_run_id
    assert (updated["state"]["type"], updated["state"]["name"]) == ("COMPLETED", "Completed")
    assert updated["run_count"] == 2
    assert updated["total_run_time"] == 1.5
    assert datetime.fromisoformat(updated["end_time"]) == end
    assert updated["name"] == "extract-0"
    assert [s["name"] for s in updated["state_history"]] == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]


async def test_one_batch_may_carry_a_task_run_twice(api: httpx.AsyncClient) -> None:
    """A batch re-sent after a failure comes ahead of newer records of the same task runs."""
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], state={"type": "RUNNING"})
    task_run_id = str(uuid.uuid4())
    older = task_run_record(
        run["id"], ("PENDING", "Pending"), ("RUNNING", "Running"), task_run_id=task_run_id
    )
    newer = task_run_record(run["id"], ("COMPLETED", "Completed"), task_run_id=task_run_id)
    body(await api.post("/api/batch", json={"task_runs": [older, newer]}))
    task_run = body(await api.get(f"/api/task_runs/{task_run_id}"))
    assert task_run["state"]["type"] == "COMPLETED"
    assert [s["type"] for s in task_run["state_history"]] == ["PENDING", "RUNNING", "COMPLETED"]
    assert body(await api.get("/api/task_runs"))["count"] == 1


async def test_resending_the_same_batch_is_harmless(api: httpx.AsyncClient) -> None:
    """A batch whose answer was lost is sent again: the server must not refuse it."""
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], state={"type": "RUNNING"})
    record = task_run_record(run["id"], ("PENDING", "Pending"), ("RUNNING", "Running"))
    batch = {"task_runs": [record]}
    body(await api.post("/api/batch", json=batch))
    completed = task_run_record(run["id"], ("COMPLETED", "Completed"), task_run_id=record["id"])
    body(await api.post("/api/batch", json={"task_runs": [*batch["task_runs"], completed]}))
    # As the SDK re-sends: the same states, without ids (the server gives new ones).
    for state in record["states"]:
        del state["id"]
    body(await api.post("/api/batch", json=batch))
    task_run = body(await api.get(f"/api/task_runs/{record['id']}"))
    assert task_run["state"]["type"] == "COMPLETED"
    assert [s["type"] for s in task_run["state_history"]] == ["PENDING", "RUNNING", "COMPLETED"]


async def test_records_of_an_unknown_flow_run_are_refused_and_the_rest_recorded(
    api: httpx.AsyncClient,
) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], state={"type": "RUNNING"})
    missing = str(uuid.uuid4())
    good = task_run_record(run["id"], ("PENDING", "Pending"))
    bad = task_run_record(missing, ("PENDING", "Pending"))
    lines = [log_line(run["id"], "kept"), log_line(missing, "orphan"), log_line(None, "no run")]
    result = body(await api.post("/api/batch", json={"task_runs": [bad, good], "logs": lines}))
    assert result == {
        "task_runs": 1,
        "logs": 2,
        "refused": [
            {"kind": "task_run", "index": 0, "reason": f"flow run {missing} does not exist"},
            {"kind": "log", "index": 1, "reason": f"flow run {missing} does not exist"},
        ],
    }
    assert [t["id"] for t in body(await api.get("/api/task_runs"))["items"]] == [good["id"]]
    assert [line["message"] for line in body(await api.get("/api/logs"))] == ["kept", "no run"]


async def test_invalid_records_are_refused_naming_the_field_and_the_rest_recorded(
    api: httpx.AsyncClient,
) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], state={"type": "RUNNING"})
    record = task_run_record(run["id"], ("PENDING", "Pending"))
    bad_state = {"type": "PENDING", "name": "Pending", "timestamp": "now"}
    invalid_runs: list[tuple[Any, str]] = [
        (record | {"id": str(uuid.uuid4()), "states": []}, "states: "),
        (record | {"flow_run_id": "nope"}, "flow_run_id: "),
        (record | {"task_key": None}, "task_key: "),
        (record | {"extra": True}, "extra: "),
        (record | {"states": [bad_state]}, "states.0.timestamp: "),
        ("not a record", "Input should be a valid dictionary"),
    ]
    invalid_lines: list[tuple[Any, str]] = [
        (log_line(None, "x", level=500), "level: "),
        (log_line(None, "x") | {"message": None}, "message: "),
    ]
    batch = {
        "task_runs": [*(r for r, _ in invalid_runs), record],
        "logs": [*(line for line, _ in invalid_lines), log_line(run["id"], "kept")],
    }
    result = body(await api.post("/api/batch", json=batch))
    assert (result["task_runs"], result["logs"]) == (1, 1)
    expected = [("task_run", i, start) for i, (_, start) in enumerate(invalid_runs)]
    expected += [("log", i, start) for i, (_, start) in enumerate(invalid_lines)]
    refused = [(r["kind"], r["index"], r["reason"]) for r in result["refused"]]
    assert [(kind, index) for kind, index, _ in refused] == [(k, i) for k, i, _ in expected]
    for (_, _, reason), (_, _, start) in zip(refused, expected, strict=True):
        assert start in reason, (start, reason)
    assert [t["id"] for t in body(await api.get("/api/task_runs"))["items"]] == [record["id"]]
    assert [line["message"] for line in body(await api.get("/api/logs"))] == ["kept"]


async def test_a_body_that_is_not_a_batch_is_422(api: httpx.AsyncClient) -> None:
    cases: list[tuple[Any, tuple[Any, ...]]] = [
        ({"task_run": []}, ("body", "task_run")),
        ({"task_runs": {}}, ("body", "task_runs")),
        ([], ("body",)),
    ]
    await assert_422_naming(api, "POST", "/api/batch", cases)
    await assert_422_naming(api, "POST", "/api/logs", [({"logs": []}, ("body",))])


async def test_logs_page_forward_with_after_id(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], state={"type": "RUNNING"})
    other = await create_run(api, flow["id"], state={"type": "RUNNING"})
    lines = [log_line(run["id"], f"line {i}", level=10 if i % 2 else 30) for i in range(6)]
    assert body(await api.post("/api/logs", json=lines), 201) == {
        "task_runs": 0,
        "logs": 6,
        "refused": [],
    }
    body(await api.post("/api/logs", json=[log_line(other["id"], "elsewhere")]), 201)

    stored = body(await api.get("/api/logs", params={"flow_run_id": run["id"]}))
    assert [line["message"] for line in stored] == [f"line {i}" for i in range(6)]
    ids = [line["id"] for line in stored]
    assert ids == sorted(ids)
    assert all(line["flow_run_id"] == run["id"] for line in stored)

    after = body(await api.get("/api/logs", params={"flow_run_id": run["id"], "after_id": ids[3]}))
    assert [line["message"] for line in after] == ["line 4", "line 5"]
    assert (
        body(await api.get("/api/logs", params={"flow_run_id": run["id"], "after_id": ids[-1]}))
        == []
    )

    limited = body(await api.get("/api/logs", params={"flow_run_id": run["id"], "limit": 2}))
    assert [line["id"] for line in limited] == ids[:2]
    warnings = body(await api.get("/api/logs", params={"flow_run_id": run["id"], "min_level": 30}))
    assert [line["message"] for line in warnings] == ["line 0", "line 2", "line 4"]
    assert len(body(await api.get("/api/logs"))) == 7


async def test_log_lines_are_refused_one_by_one(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], state={"type": "RUNNING"})
    missing = str(uuid.uuid4())
    lines = [log_line(missing, "orphan"), log_line(run["id"], "kept"), {"level": "high"}]
    result = body(await api.post("/api/logs", json=lines), 201)
    assert (result["logs"], [(r["index"], r["kind"]) for r in result["refused"]]) == (
        1,
        [(0, "log"), (2, "log")],
    )
    assert missing in result["refused"][0]["reason"]
    assert "level: " in result["refused"][1]["reason"]
    assert [line["message"] for line in body(await api.get("/api/logs"))] == ["kept"]


async def test_deleting_a_flow_run_deletes_its_records(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], state={"type": "RUNNING"})
    record = task_run_record(run["id"], ("PENDING", "Pending"))
    body(
        await api.post(
            "/api/batch", json={"task_runs": [record], "logs": [log_line(run["id"], "x")]}
        )
    )
    assert (await api.delete(f"/api/flow_runs/{run['id']}")).status_code == 204
    assert (await api.get(f"/api/task_runs/{record['id']}")).status_code == 404
    assert body(await api.get("/api/logs")) == []


# -- artifacts --------------------------------------------------------------------


async def test_artifacts_are_versioned_by_key(api: httpx.AsyncClient) -> None:
    flow = await create_flow(api)
    run = await create_run(api, flow["id"], state={"type": "RUNNING"})
    versions = []
    for version in range(3):
        versions.append(
            body(
                await api.post(
                    "/api/artifacts",
                    json={
                        "key": "weather-report",
                        "type": "markdown",
                        "data": f"# version {version}",
                        "flow_run_id": run["id"],
                    },
                ),
                201,
            )
        )
    other = body(
        await api.post(
            "/api/artifacts",
            json={"key": "other", "type": "table", "data": [{"a": 1}, {"a": 2}]},
        ),
        201,
    )
    unkeyed = body(
        await api.post(
            "/api/artifacts",
            json={"type": "link", "data": {"link": "https://example.com", "link_text": None}},
        ),
        201,
    )

    page = body(await api.get("/api/artifacts", params={"key": "weather-report"}))
    assert page["count"] == 3
    assert [a["data"] for a in page["items"]] == ["# version 2", "# version 1", "# version 0"]
    assert [a["is_latest"] for a in page["items"]] == [True, False, False]
    assert all(a["flow_run_id"] == run["id"] for a in page["items"])

    latest = body(await api.get("/api/artifacts/latest/weather-report"))
    assert latest["id"] == versions[-1]["id"]
    assert latest["is_latest"] is True

    oldest = body(await api.get(f"/api/artifacts/{versions[0]['id']}"))
    assert (oldest["data"], oldest["is_latest"]) == ("# version 0", False)
    assert body(await api.get(f"/api/artifacts/{other['id']}"))["data"] == [{"a": 1}, {"a": 2}]

    latest_only = body(await api.get("/api/artifacts", params={"latest_only": True}))
    assert latest_only["count"] == 3
    assert {a["id"] for a in latest_only["items"]} == {
        versions[-1]["id"],
        other["id"],
        unkeyed["id"],
    }

    for_run = body(await api.get("/api/artifacts", params={"flow_run_id": run["id"]}))
    assert for_run["count"] == 3
    paged = body(await api.get("/api/artifacts", params={"limit": 2, "offset": 4}))
    assert (paged["count"], len(paged["items"])) == (5, 1)


async def test_invalid_artifacts_are_422(api: httpx.AsyncClient) -> None:
    cases: list[tuple[Any, tuple[Any, ...]]] = [
        ({"key": key, "type": "markdown", "data": "x"}, ("body", "key"))
        for key in ["Weather Report", "UPPER", "under_score", "x" * 201]
    ]
    cases.append(({"type": "image", "data": "x"}, ("body", "type")))
    cases.append(({"type": "markdown"}, ("body", "data")))
    await assert_422_naming(api, "POST", "/api/artifacts", cases)
    response = await api.post("/api/artifacts", json=cases[0][0])
    assert "'Weather Report'" in response.text
    assert "lower-case" in response.text
    assert body(await api.get("/api/artifacts"))["count"] == 0


async def test_an_artifact_for_an_unknown_flow_run_is_422(api: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    response = await api.post(
        "/api/artifacts", json={"type": "markdown", "data": "x", "flow_run_id": missing}
    )
    assert missing in error_text(response)


# -- variables --------------------------------------------------------------------


async def test_variable_values_round_trip(api: httpx.AsyncClient) -> None:
    values = [{"region": "europe-west1", "cpu": 2}, ["a", 1, None], 42, 2.5, "text", True, None]
    for i, value in enumerate(values):
        body(await api.put(f"/api/variables/var_{i}", json={"value": value}))
    assert [
        body(await api.get(f"/api/variables/var_{i}"))["value"] for i in range(len(values))
    ] == (values)
    page = body(await api.get("/api/variables"))
    assert [v["value"] for v in page["items"]] == values


async def test_variables_crud(api: httpx.AsyncClient) -> None:
    created = body(await api.put("/api/variables/region", json={"value": "us-east1"}))
    assert (created["name"], created["value"], created["tags"]) == ("region", "us-east1", [])

    updated = body(
        await api.put("/api/variables/region", json={"value": "europe-west1", "tags": ["gcp"]})
    )
    assert updated["id"] == created["id"]
    assert (updated["value"], updated["tags"]) == ("europe-west1", ["gcp"])
    assert updated["updated"] >= created["updated"]

    body(await api.put("/api/variables/image-tag", json={"value": "v1"}))
    page = body(await api.get("/api/variables"))
    assert page["count"] == 2
    assert [v["name"] for v in page["items"]] == ["image-tag", "region"]
    page = body(await api.get("/api/variables", params={"limit": 1, "offset": 1}))
    assert [v["name"] for v in page["items"]] == ["region"]

    assert body(await api.get("/api/variables/region"))["value"] == "europe-west1"
    assert (await api.delete("/api/variables/region")).status_code == 204
    assert (await api.get("/api/variables/region")).status_code == 404
    assert (await api.delete("/api/variables/region")).status_code == 404
    assert body(await api.get("/api/variables"))["count"] == 1


async def test_invalid_variable_names_are_422(api: httpx.AsyncClient) -> None:
    for name in ["Region", "my var", "a.b", "ends-in-a-newline\n"]:
        response = await api.put(f"/api/variables/{quote(name)}", json={"value": 1})
        assert repr(name) in error_text(response), name
    response = await api.put(f"/api/variables/{'x' * 201}", json={"value": 1})
    assert "at most 200 characters" in error_text(response)
    assert body(await api.get("/api/variables"))["count"] == 0


async def test_invalid_variable_bodies_name_the_field(api: httpx.AsyncClient) -> None:
    cases: list[tuple[Any, tuple[Any, ...]]] = [
        ({}, ("body", "value")),
        ({"value": 1, "tags": "x"}, ("body", "tags")),
        ({"value": 1, "v": 2}, ("body", "v")),
    ]
    await assert_422_naming(api, "PUT", "/api/variables/ok", cases)


# -- API keys and authentication --------------------------------------------------


async def test_api_key_secret_is_shown_once(api: httpx.AsyncClient) -> None:
    created = body(await api.post("/api/api_keys", json={"name": "ci"}), 201)
    secret = created["key"]
    assert secret.startswith(f"sky_{created['prefix']}_")
    assert created["revoked"] is False

    listing = await api.get("/api/api_keys")
    keys = body(listing)
    assert [k["name"] for k in keys] == ["ci"]
    assert "key" not in keys[0]
    assert secret.split("_", 2)[2] not in listing.text

    duplicate = await api.post("/api/api_keys", json={"name": "ci"})
    assert duplicate.status_code == 409
    assert "ci" in duplicate.json()["detail"]

    assert ("body", "name") in error_locations(await api.post("/api/api_keys", json={}))

    revoked = body(await api.delete("/api/api_keys/ci"))
    assert revoked["revoked"] is True
    assert "key" not in revoked
    assert body(await api.get("/api/api_keys"))[0]["revoked"] is True


async def test_auth_requires_a_valid_key(
    api: httpx.AsyncClient, api_settings: Settings, api_for: ApiFor
) -> None:
    secret = body(await api.post("/api/api_keys", json={"name": "worker"}), 201)["key"]
    other = body(await api.post("/api/api_keys", json={"name": "other"}), 201)
    admin = body(await api.post("/api/api_keys", json={"name": "ops", "scope": "admin"}), 201)
    auth_settings = api_settings.model_copy(update={"server_auth_enabled": True})

    async with api_for(auth_settings) as authed:
        assert body(await authed.get("/api/health")) == {"status": "ok"}

        missing = await authed.get("/api/flows")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "SKYRUN_API_KEY" in missing.json()["detail"]

        for header in (
            "Bearer sky_000000000000_nope",
            "Bearer not-a-skyrun-key",
            f"Bearer {secret}x",
            f"Basic {secret}",
            f"Bearer sky_{other['prefix']}_{secret.split('_', 2)[2]}",
        ):
            response = await authed.get("/api/flows", headers={"Authorization": header})
            assert response.status_code == 401, header
            assert "invalid or revoked" in response.json()["detail"] or header.startswith("Basic")

        good = {"Authorization": f"Bearer {secret}"}
        assert body(await authed.get("/api/flows", headers=good))["count"] == 0
        assert (
            await authed.post("/api/flows", json={"name": "x"}, headers=good)
        ).status_code == 200
        body(
            await authed.delete(
                "/api/api_keys/worker", headers={"Authorization": f"Bearer {admin['key']}"}
            )
        )

    # A new app has no cache of verified keys: the revoked key is refused at once.
    async with api_for(auth_settings) as authed:
        response = await authed.get("/api/flows", headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 401
        assert body(await authed.get("/api/health")) == {"status": "ok"}


async def test_without_auth_no_key_is_needed(api: httpx.AsyncClient) -> None:
    assert body(await api.get("/api/flows"))["count"] == 0
    response = await api.get("/api/flows", headers={"Authorization": "Bearer whatever"})
    assert response.status_code == 200
