"""The SDK's recorder: bounded batches, each recorded once, none dropped while the server is away.

The faults are real: a server process behind a proxy that loses replies,
answers 500 or drops requests (tests/lossy_proxy.py), and the counts are of
what the server stored.
"""

from __future__ import annotations

import re
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lossy_proxy import LossyProxy
from processes import ServerProcess, wait_for
from skyrun.client.client import SkyrunClient
from skyrun.client.errors import ServerUnreachable
from skyrun.client.transport import Response
from skyrun.schemas.core import FlowRunCreate
from skyrun.schemas.states import StateCreate, StateType
from skyrun.sdk import recorder as recorder_module
from skyrun.sdk import spool
from skyrun.sdk.recorder import Recorder
from skyrun.sdk.task_records import TaskRecord
from skyrun.settings import Settings

WAIT = 60  # a guard against hangs, not a timing assertion


def _running_flow_run(client: SkyrunClient) -> uuid.UUID:
    flow = client.create_flow("recorded")
    run = client.create_flow_run(
        FlowRunCreate(flow_id=flow.id, state=StateCreate(type=StateType.RUNNING))
    )
    return run.id


def _record_tasks(
    recorder: Recorder, flow_run_id: uuid.UUID, n: int, prefix: str = "step"
) -> list[TaskRecord]:
    records = []
    for i in range(n):
        record = TaskRecord(uuid.uuid4(), flow_run_id, f"{prefix}-{i}", prefix, [])
        for state_type, name in (("PENDING", "Pending"), ("RUNNING", "Running")):
            recorder.add_state(record, state_type, name)
        recorder.add_log(
            flow_run_id=flow_run_id,
            task_run_id=uuid.UUID(record.id),
            name="test",
            level=20,
            message=f"{prefix} line {i}",
            timestamp=time.time(),
        )
        recorder.add_state(record, "COMPLETED", "Completed")
        records.append(record)
    return records


def _stored(client: SkyrunClient, flow_run_id: uuid.UUID) -> tuple[int, list[str]]:
    """(task runs with their three states, every log message) as the server has them."""
    task_runs = client.list_task_runs(flow_run_id, limit=1000).items
    for task_run in task_runs:
        assert [s.type.value for s in task_run.state_history] == ["PENDING", "RUNNING", "COMPLETED"]
    return len(task_runs), sorted(
        line.message for line in client.read_logs(flow_run_id, limit=1000)
    )


def _expected(n: int, prefix: str = "step") -> tuple[int, list[str]]:
    return n, sorted(f"{prefix} line {i}" for i in range(n))


def _watch_batches(
    monkeypatch: pytest.MonkeyPatch,
    client: SkyrunClient,
    see: Callable[[dict[str, Any], str], None],
) -> None:
    """Call `see` with each batch request's body and Idempotency-Key before it is sent
    (it may raise, as a request that got no answer would)."""
    original = client.request

    def watched(method: str, path: str, **kwargs: Any) -> Response:
        if path == "batch":
            see(kwargs["json"], kwargs["headers"]["Idempotency-Key"])
        return original(method, path, **kwargs)

    monkeypatch.setattr(client, "request", watched)


# -- in embedded mode ------------------------------------------------------------


def test_a_large_flush_goes_in_bounded_batches(
    sdk_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "BATCH_SIZE", 3)
    monkeypatch.setattr(recorder_module, "LOG_BATCH_SIZE", 4)
    client = SkyrunClient(Settings(home=sdk_home))
    sent: list[tuple[int, int]] = []
    _watch_batches(
        monkeypatch,
        client,
        lambda body, _: sent.append((len(body["task_runs"]), len(body["logs"]))),
    )
    recorder = Recorder(client, flush_interval=3600)
    try:
        flow_run_id = _running_flow_run(client)
        _record_tasks(recorder, flow_run_id, 10)
        recorder.flush()
        # Log lines follow the last task runs, which they may name.
        assert sent == [(3, 0), (3, 0), (3, 0), (1, 4), (0, 4), (0, 2)]
        assert _stored(client, flow_run_id) == _expected(10)
    finally:
        recorder.close()
        client.close()


def test_a_batch_without_an_answer_is_sent_again_first_unchanged_under_its_key(
    sdk_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "BATCH_SIZE", 3)
    client = SkyrunClient(Settings(home=sdk_home))
    sent: list[tuple[list[str], str]] = []

    def no_answer_to_the_second(body: dict[str, Any], key: str) -> None:
        sent.append(([run["name"] for run in body["task_runs"]], key))
        if len(sent) == 2:
            raise ServerUnreachable("the server is away")

    _watch_batches(monkeypatch, client, no_answer_to_the_second)
    recorder = Recorder(client, flush_interval=3600)
    try:
        flow_run_id = _running_flow_run(client)
        _record_tasks(recorder, flow_run_id, 10)
        assert recorder.send_buffered() is False
        assert [names for names, _ in sent] == [
            ["step-0", "step-1", "step-2"],
            ["step-3", "step-4", "step-5"],
        ]
        _record_tasks(recorder, flow_run_id, 2, prefix="late")
        assert recorder.send_buffered() is True
        assert [names for names, _ in sent[2:]] == [
            ["step-3", "step-4", "step-5"],
            ["step-6", "step-7", "step-8"],
            ["step-9", "late-0", "late-1"],
        ]
        keys = [key for _, key in sent]
        assert keys[2] == keys[1]  # the same request again
        assert len(set(keys)) == 4
        count, messages = _stored(client, flow_run_id)
        assert (count, messages) == (12, sorted(_expected(10)[1] + _expected(2, "late")[1]))
    finally:
        recorder.close()
        client.close()


def test_records_of_an_unknown_flow_run_are_dropped_with_one_warning_and_the_rest_kept(
    sdk_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = SkyrunClient(Settings(home=sdk_home))
    sent: list[int] = []
    _watch_batches(monkeypatch, client, lambda body, _: sent.append(len(body["task_runs"])))
    recorder = Recorder(client, flush_interval=3600)
    try:
        flow_run_id = _running_flow_run(client)
        _record_tasks(recorder, uuid.uuid4(), 2, prefix="orphan")
        _record_tasks(recorder, flow_run_id, 3)
        assert recorder.send_buffered() is True
        assert _stored(client, flow_run_id) == _expected(3)
        warnings = [line for line in capsys.readouterr().err.splitlines() if "refused" in line]
        assert len(warnings) == 1, warnings
        assert "task run 'orphan-0' (and 3 more), which is dropped: flow run" in warnings[0]
        assert recorder.send_buffered() is True
        assert sent == [5]  # the refused records are not sent again
    finally:
        recorder.close()
        client.close()


# -- against a server process, through a proxy that loses, fails and refuses ---


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "server-home")
    yield process
    process.stop()


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[LossyProxy]:
    lossy = LossyProxy(server.port)
    yield lossy
    lossy.close()


def _client(home: Path, api_url: str, retries: int = 0) -> SkyrunClient:
    # Retries by count only (not for SKYRUN_CLIENT_RETRY_SECONDS once the API answered),
    # so each test decides whether the client or the recorder sends a batch again.
    settings = Settings(home=home, api_url=api_url, client_retries=retries, client_retry_seconds=0)
    return SkyrunClient(settings)


@pytest.mark.parametrize("retries", [0, 2], ids=["recorder-resends", "client-retries"])
def test_a_batch_whose_reply_is_lost_is_recorded_once(
    tmp_path: Path, server: ServerProcess, proxy: LossyProxy, retries: int
) -> None:
    client = _client(tmp_path, proxy.url, retries)
    recorder = Recorder(client, flush_interval=3600)
    try:
        flow_run_id = _running_flow_run(client)
        _record_tasks(recorder, flow_run_id, 5)
        proxy.fault("/api/batch", "drop_reply")
        # Sent again by the client's own retry, or else by the recorder's next send.
        if retries == 0:
            assert recorder.send_buffered() is False
        assert recorder.send_buffered() is True
        assert proxy.count("/api/batch") == 2  # the server saw the same batch twice
        assert _stored(client, flow_run_id) == _expected(5)  # and recorded it once
    finally:
        recorder.close()
        client.close()


def test_a_5xx_keeps_the_records(tmp_path: Path, server: ServerProcess, proxy: LossyProxy) -> None:
    client = _client(tmp_path, proxy.url, retries=2)
    recorder = Recorder(client, flush_interval=3600)
    try:
        flow_run_id = _running_flow_run(client)
        _record_tasks(recorder, flow_run_id, 5)
        proxy.fault("/api/batch", "500")  # the client does not retry a 500
        assert recorder.send_buffered() is False
        assert _stored(client, flow_run_id) == (0, [])
        assert recorder.send_buffered() is True
        assert _stored(client, flow_run_id) == _expected(5)
    finally:
        recorder.close()
        client.close()


def test_records_wait_for_a_server_that_is_away(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server-home")
    client = _client(tmp_path, server.api_url)
    recorder = Recorder(client, flush_interval=3600)
    try:
        flow_run_id = _running_flow_run(client)
        server.stop()
        _record_tasks(recorder, flow_run_id, 5)
        assert recorder.send_buffered() is False  # the connection is refused: kept
        server = ServerProcess(tmp_path / "server-home", port=server.port)
        assert recorder.send_buffered() is True
        assert _stored(client, flow_run_id) == _expected(5)
    finally:
        recorder.close()
        client.close()
        server.stop()


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("skyrun: ")]


def test_a_flush_that_runs_out_of_time_spools_and_the_next_recorder_sends_it(
    tmp_path: Path, server: ServerProcess, proxy: LossyProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "sdk-home"
    client = _client(home, proxy.url)
    recorder = Recorder(client, flush_interval=3600, flush_timeout=1.0)
    try:
        flow_run_id = _running_flow_run(client)
        _record_tasks(recorder, flow_run_id, 5)
        proxy.refusing = True
        recorder.flush()  # returns (the flow run goes on to report its end)
        assert proxy.count("/api/batch") >= 2  # it tried again before giving up
        [warning] = _warnings(capsys.readouterr().err)
        match = re.search(r"saved them to (\S+\.jsonl):", warning)
        assert match, warning
        spooled = Path(match.group(1))
        assert spooled.parent == home / "spool"
        assert stat.S_IMODE(spooled.stat().st_mode) == 0o600

        # Gave up once: a later flush (at exit, say) tries once and adds to the same file.
        attempts = proxy.count("/api/batch")
        _record_tasks(recorder, flow_run_id, 2, prefix="late")
        recorder.flush()
        assert proxy.count("/api/batch") == attempts + 1
        assert _warnings(capsys.readouterr().err) == []
        assert spool.spool_files(home) == [spooled]
    finally:
        recorder.close()
        client.close()

    proxy.refusing = False
    later = _client(home, proxy.url)
    next_recorder = Recorder(later, flush_interval=3600)  # its start sends the spool
    try:
        wait_for(lambda: not spooled.exists(), WAIT, "the spool to be sent and deleted")
        count, messages = _stored(later, flow_run_id)
        assert (count, messages) == (7, sorted(_expected(5)[1] + _expected(2, "late")[1]))
    finally:
        next_recorder.close()
        later.close()


def test_a_spooled_batch_that_did_arrive_is_not_recorded_twice(
    tmp_path: Path, server: ServerProcess, proxy: LossyProxy
) -> None:
    # The reply of the last try was lost: the batch is recorded and spooled.
    home = tmp_path / "sdk-home"
    client = _client(home, proxy.url)
    recorder = Recorder(client, flush_interval=3600, flush_timeout=0)
    try:
        flow_run_id = _running_flow_run(client)
        _record_tasks(recorder, flow_run_id, 3)
        proxy.fault("/api/batch", "drop_reply")
        recorder.flush()
        assert len(spool.spool_files(home)) == 1
        assert _stored(client, flow_run_id) == _expected(3)
    finally:
        recorder.close()
        client.close()
    later = _client(home, proxy.url)
    next_recorder = Recorder(later, flush_interval=3600)
    try:
        wait_for(lambda: not spool.spool_files(home), WAIT, "the spool to be sent")
        assert _stored(later, flow_run_id) == _expected(3)
    finally:
        next_recorder.close()
        later.close()
