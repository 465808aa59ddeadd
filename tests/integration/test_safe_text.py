"""Text with NUL or lone surrogates arrives, and is stored, on SQLite and PostgreSQL.

A lone surrogate is what `os.listdir` returns for a file name that is not
UTF-8; NUL is valid JSON that PostgreSQL cannot store. Both become U+FFFD:
in the SDK when it encodes (surrogates), in the server before any route
(both), so nothing is refused, nothing answers 500 and no record is lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from skyrun.client.client import get_client
from skyrun.schemas.core import FlowRunFilter

NON_UTF8_NAME = os.fsdecode(b"caf\xe9.csv")  # "caf\udce9.csv"
UNSAFE = f"{NON_UTF8_NAME} \x00 \ud800 end"
SAFE = "caf\ufffd.csv \ufffd \ufffd end"


async def _post(api: httpx.AsyncClient, method: str, path: str, payload: Any) -> Any:
    # json.dumps writes a lone surrogate as "\udce9" and NUL as "\u0000", as any
    # JSON encoder that escapes non-ASCII text would send them.
    response = await api.request(
        method, path, content=json.dumps(payload), headers={"content-type": "application/json"}
    )
    assert response.is_success, (path, response.status_code, response.text)
    return response.json()


async def test_the_api_stores_unsafe_text_in_every_kind_of_record(api: httpx.AsyncClient) -> None:
    flow_ = await _post(api, "POST", "/api/flows", {"name": f"flow {UNSAFE}", "tags": [UNSAFE]})
    assert (flow_["name"], flow_["tags"]) == (f"flow {SAFE}", [SAFE])

    run = await _post(
        api,
        "POST",
        "/api/flow_runs",
        {
            "flow_id": flow_["id"],
            "name": f"run {UNSAFE}",
            "parameters": {UNSAFE: [UNSAFE, {"nested": UNSAFE}]},
            "state": {"type": "RUNNING", "message": UNSAFE},
        },
    )
    stored_run = (await api.get(f"/api/flow_runs/{run['id']}")).json()
    for answer in (run, stored_run):
        assert answer["name"] == f"run {SAFE}"
        assert answer["parameters"] == {SAFE: [SAFE, {"nested": SAFE}]}
        assert answer["state"]["message"] == SAFE

    task_run_id = "6d1c2c6e-8a4b-4c55-9a53-0c6b1d2e3f40"
    line = {"flow_run_id": run["id"], "level": 20, "timestamp": 1.0}
    batch = {
        "task_runs": [
            {
                "id": task_run_id,
                "flow_run_id": run["id"],
                "name": f"read {UNSAFE}",
                "task_key": f"read-{UNSAFE}",
                "tags": [UNSAFE],
                "states": [
                    {"type": "FAILED", "name": "Failed", "timestamp": 1.0, "message": UNSAFE}
                ],
            }
        ],
        "logs": [{**line, "name": f"logger {UNSAFE}", "message": f"batch {UNSAFE}"}],
    }
    assert (await _post(api, "POST", "/api/batch", batch))["refused"] == []
    assert (await _post(api, "POST", "/api/logs", [{**line, "name": "n", "message": UNSAFE}]))[
        "logs"
    ] == 1
    task_run = (await api.get(f"/api/task_runs/{task_run_id}")).json()
    assert (task_run["name"], task_run["task_key"], task_run["tags"]) == (
        f"read {SAFE}",
        f"read-{SAFE}",
        [SAFE],
    )
    assert task_run["state"]["message"] == task_run["state_history"][0]["message"] == SAFE
    logs = (await api.get("/api/logs", params={"flow_run_id": run["id"]})).json()
    assert [(entry["name"], entry["message"]) for entry in logs] == [
        (f"logger {SAFE}", f"batch {SAFE}"),
        ("n", SAFE),
    ]

    artifact = await _post(
        api,
        "POST",
        "/api/artifacts",
        {
            "type": "table",
            "description": UNSAFE,
            "data": [{UNSAFE: UNSAFE}],
            "flow_run_id": run["id"],
        },
    )
    stored_artifact = (await api.get(f"/api/artifacts/{artifact['id']}")).json()
    for answer in (artifact, stored_artifact):
        assert (answer["description"], answer["data"]) == (SAFE, [{SAFE: SAFE}])

    variable = await _post(
        api, "PUT", "/api/variables/files", {"value": {"names": [UNSAFE]}, "tags": [UNSAFE]}
    )
    stored_variable = (await api.get("/api/variables/files")).json()
    for answer in (variable, stored_variable):
        assert (answer["value"], answer["tags"]) == ({"names": [SAFE]}, [SAFE])


async def test_nul_in_a_path_or_query_is_an_answer_not_a_500(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/artifacts/latest/a%00b")).status_code == 404
    listed = await api.get("/api/artifacts", params={"key": "a\x00b"})
    assert (listed.status_code, listed.json()["count"]) == (200, 0)
    assert (await api.get("/api/variables/a%00b")).status_code in (404, 422)


async def test_escapes_that_are_safe_are_kept(api: httpx.AsyncClient) -> None:
    kept = "emoji 😀, escaped backslash \\u0000, ANSI \x1b[1mbold\x1b[0m"
    flow_ = await _post(api, "POST", "/api/flows", {"name": "kept"})
    run = await _post(
        api, "POST", "/api/flow_runs", {"flow_id": flow_["id"], "parameters": {"p": kept}}
    )
    assert run["parameters"] == {"p": kept}


@pytest.fixture
def sdk_database(database_url: str, sdk_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # database_url first: its database is dropped after the SDK's clients close.
    """The SDK in embedded mode on the test's database (SQLite or PostgreSQL)."""
    monkeypatch.setenv("SKYRUN_DATABASE_URL", database_url)
    return database_url


FLOW_SCRIPT = """
import os

from skyrun import flow, get_run_logger, task
from skyrun.artifacts import create_markdown_artifact
from skyrun.client.client import get_client

NON_UTF8_NAME = os.fsdecode(b"caf\\xe9.csv")
UNSAFE = f"{NON_UTF8_NAME} \\x00 \\ud800 end"


@task(name=f"read {NON_UTF8_NAME}")
def read(name: str) -> str:
    get_run_logger().info("task read %s \\x00", name)
    return name


@flow(name="files")
def files(names: list[str]) -> list[str]:
    get_run_logger().info("found %s", names)
    create_markdown_artifact(f"# {UNSAFE}", key="listing", description=UNSAFE)
    get_client().set_variable("last-listing", {"names": names})
    return [read(name) for name in names]


assert files([NON_UTF8_NAME, UNSAFE]) == [NON_UTF8_NAME, UNSAFE]
"""


def test_a_flow_with_unsafe_text_everywhere_completes_with_every_record(
    sdk_database: str, sdk_home: Path
) -> None:
    # In a process of its own: pytest's capture would keep the flow's lone surrogates
    # raw, and pytest-xdist cannot send such a report to its main process.
    script = sdk_home / "files.py"
    script.write_text(FLOW_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "SKYRUN_HOME": str(sdk_home), "SKYRUN_DATABASE_URL": sdk_database},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="backslashreplace")

    client = get_client()
    [run] = client.filter_flow_runs(FlowRunFilter(flow_name="files")).items
    assert run.state is not None and run.state.type.value == "COMPLETED"
    assert run.parameters == {"names": ["caf\ufffd.csv", SAFE]}
    task_runs = client.list_task_runs(run.id).items
    assert [(t.name, t.state and t.state.type.value) for t in task_runs] == [
        ("read caf\ufffd.csv-0", "COMPLETED"),
        ("read caf\ufffd.csv-1", "COMPLETED"),
    ]
    messages = [line.message for line in client.read_logs(run.id)]
    assert f"found {[NON_UTF8_NAME, UNSAFE]!r}" in messages  # repr() escapes them itself
    assert "task read caf\ufffd.csv \ufffd" in messages
    assert f"task read {SAFE} \ufffd" in messages
    artifact = client.read_latest_artifact("listing")
    assert (artifact.data, artifact.description) == (f"# {SAFE}", SAFE)
    assert client.read_variable("last-listing").value == {"names": ["caf\ufffd.csv", SAFE]}
