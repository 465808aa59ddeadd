"""The SDK's recorder: task runs sent in bounded batches, nothing lost while the server is away."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from processes import ServerProcess
from skyrun.client.client import SkyrunClient
from skyrun.client.errors import ServerUnreachable
from skyrun.client.transport import Response
from skyrun.schemas.core import FlowRunCreate
from skyrun.schemas.states import StateCreate, StateType
from skyrun.sdk import recorder as recorder_module
from skyrun.sdk.recorder import Recorder, TaskRecord
from skyrun.settings import Settings


def _running_flow_run(client: SkyrunClient) -> uuid.UUID:
    flow = client.create_flow("recorded")
    run = client.create_flow_run(
        FlowRunCreate(flow_id=flow.id, state=StateCreate(type=StateType.RUNNING))
    )
    return run.id


def _record_tasks(recorder: Recorder, flow_run_id: uuid.UUID, n: int) -> list[TaskRecord]:
    records = []
    for i in range(n):
        record = TaskRecord(uuid.uuid4(), flow_run_id, f"step-{i}", "step", [])
        for state_type, name in (("PENDING", "Pending"), ("RUNNING", "Running")):
            recorder.add_state(record, state_type, name)
        recorder.add_log(
            flow_run_id=flow_run_id,
            task_run_id=uuid.UUID(record.id),
            name="test",
            level=20,
            message=f"line {i}",
            timestamp=time.time(),
        )
        recorder.add_state(record, "COMPLETED", "Completed")
        records.append(record)
    return records


def _assert_all_stored(client: SkyrunClient, flow_run_id: uuid.UUID, n: int) -> None:
    task_runs = client.list_task_runs(flow_run_id, limit=1000).items
    assert len(task_runs) == n
    for task_run in task_runs:
        assert [s.type.value for s in task_run.state_history] == ["PENDING", "RUNNING", "COMPLETED"]
    logs = client.request("GET", "logs", params={"flow_run_id": str(flow_run_id)}).json()
    assert sorted(line["message"] for line in logs) == sorted(f"line {i}" for i in range(n))


def _watch_batches(
    monkeypatch: pytest.MonkeyPatch, client: SkyrunClient, see: Callable[[list[str]], None]
) -> None:
    """Call `see` with the task-run names of each batch request before it is sent
    (it may raise, as a failed request would)."""
    original = client.request

    def watched(method: str, path: str, **kwargs: Any) -> Response:
        if path == "batch":
            see([run["name"] for run in kwargs["json"]["task_runs"]])
        return original(method, path, **kwargs)

    monkeypatch.setattr(client, "request", watched)


def test_a_large_flush_goes_in_several_batches(
    sdk_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "BATCH_SIZE", 3)
    client = SkyrunClient(Settings(home=sdk_home))
    sent: list[int] = []
    _watch_batches(monkeypatch, client, lambda names: sent.append(len(names)))
    recorder = Recorder(client, flush_interval=3600)
    try:
        flow_run_id = _running_flow_run(client)
        _record_tasks(recorder, flow_run_id, 10)
        recorder.flush()
        assert sent == [3, 3, 3, 1]
        _assert_all_stored(client, flow_run_id, 10)
    finally:
        recorder.close()
        client.close()


def test_a_flush_cut_short_sends_the_rest_first_next_time(
    sdk_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second request of a flush fails: its runs and everything after them go
    # back to the buffer and are sent, ahead of newer runs, by the next flush.
    monkeypatch.setattr(recorder_module, "BATCH_SIZE", 3)
    client = SkyrunClient(Settings(home=sdk_home))
    sent: list[list[str]] = []

    def fail_the_second_once(names: list[str]) -> None:
        if len(sent) == 1:
            sent.append([])
            raise ServerUnreachable("the server is away")
        sent.append(names)

    _watch_batches(monkeypatch, client, fail_the_second_once)
    recorder = Recorder(client, flush_interval=3600)
    try:
        flow_run_id = _running_flow_run(client)
        _record_tasks(recorder, flow_run_id, 10)
        recorder.flush()
        assert sent == [["step-0", "step-1", "step-2"], []]
        for record in _record_tasks(recorder, flow_run_id, 2):
            record.name = "late-" + record.name
        recorder.flush()
        assert sent[2:] == [
            ["step-3", "step-4", "step-5"],
            ["step-6", "step-7", "step-8"],
            ["step-9", "late-step-0", "late-step-1"],
        ]
        task_runs = client.list_task_runs(flow_run_id, limit=1000).items
        assert len(task_runs) == 12
        assert {tuple(s.type.value for s in t.state_history) for t in task_runs} == {
            ("PENDING", "RUNNING", "COMPLETED")
        }
        assert len(client.read_logs(flow_run_id)) == 12  # the first flush's logs were kept too
    finally:
        recorder.close()
        client.close()


@pytest.fixture
def server_home(tmp_path: Path) -> Path:
    home = tmp_path / "server-home"
    home.mkdir()
    return home


def test_records_wait_for_a_server_that_is_away(server_home: Path) -> None:
    server = ServerProcess(server_home)
    settings = Settings(home=server_home, api_url=server.api_url, client_retries=0)
    client = SkyrunClient(settings)
    recorder = Recorder(client, flush_interval=3600)
    try:
        flow_run_id = _running_flow_run(client)
        server.stop()
        _record_tasks(recorder, flow_run_id, 5)
        recorder.flush()  # the server is down: the records are kept
        server = ServerProcess(server_home, port=server.port)
        recorder.flush()
        _assert_all_stored(client, flow_run_id, 5)
    finally:
        recorder.close()
        client.close()
        server.stop()
