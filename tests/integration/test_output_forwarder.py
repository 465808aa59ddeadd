"""A flow process's output, forwarded by its worker: echoed, and recorded once, none dropped."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lossy_proxy import LossyProxy
from processes import ServerProcess, wait_for
from skyrun.client.client import SkyrunClient
from skyrun.schemas.core import FlowRunCreate
from skyrun.schemas.states import StateCreate, StateType
from skyrun.sdk.recorder import close_recorders
from skyrun.settings import Settings
from skyrun.workers.output import OutputForwarder

WAIT = 60  # a guard against hangs, not a timing assertion
LINES = [f"output line {i}" for i in range(5)]
SDK_LINE = "12:00:01.123 | INFO    | Flow run 'x' - sent by the SDK itself"


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[LossyProxy]:
    server = ServerProcess(tmp_path / "server-home")
    lossy = LossyProxy(server.port)
    yield lossy
    lossy.close()
    server.stop()


@pytest.fixture
def client(tmp_path: Path, proxy: LossyProxy) -> Iterator[SkyrunClient]:
    worker_client = SkyrunClient(
        Settings(home=tmp_path / "worker-home", api_url=proxy.url, client_retries=0)
    )
    yield worker_client
    close_recorders()
    worker_client.close()


def _forward(client: SkyrunClient, flow_run_id: uuid.UUID, lines: list[str]) -> OutputForwarder:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as pipe:
        forwarder = OutputForwarder(client, flow_run_id, pipe)
        forwarder.start()
        with os.fdopen(write_end, "wb") as writer:
            writer.write("".join(line + "\n" for line in lines).encode())
        forwarder.join(WAIT)
    return forwarder


def _run(client: SkyrunClient) -> uuid.UUID:
    flow = client.create_flow("forwarded")
    state = StateCreate(type=StateType.RUNNING)
    return client.create_flow_run(FlowRunCreate(flow_id=flow.id, state=state)).id


def _messages(client: SkyrunClient, flow_run_id: uuid.UUID) -> list[str]:
    return [line.message for line in client.read_logs(flow_run_id)]


def test_output_is_echoed_and_recorded_once_without_the_sdks_own_lines(
    client: SkyrunClient, proxy: LossyProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    flow_run_id = _run(client)
    proxy.fault("/api/batch", "drop_reply")  # the first reply is lost: sent again, kept once
    forwarder = _forward(client, flow_run_id, [*LINES, SDK_LINE])
    echoed = capsys.readouterr().out.splitlines()
    assert echoed == [*LINES, SDK_LINE]
    # True once nothing is left unanswered: the batch went again, under its key.
    wait_for(forwarder.recorder.send_buffered, WAIT, "the batch to be answered")
    assert proxy.count("/api/batch") == 2
    assert _messages(client, flow_run_id) == LINES


def test_output_sent_while_the_server_is_away_is_kept_until_it_is_back(
    client: SkyrunClient, proxy: LossyProxy
) -> None:
    flow_run_id = _run(client)
    proxy.refusing = True
    _forward(client, flow_run_id, LINES)  # the run's process ended; its lines are not sent yet
    assert proxy.seen  # a send was tried, and got no answer
    proxy.refusing = False
    # The worker's recorder sends them in the background (SKYRUN_FLUSH_INTERVAL).
    wait_for(lambda: _messages(client, flow_run_id) == LINES, WAIT, "the kept lines")
