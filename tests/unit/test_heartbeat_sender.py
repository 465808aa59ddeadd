"""The engine's heartbeat sender: one thread while runs run, every run beaten, answers passed on.

The client is a stand-in that records heartbeats (the API side is tested in
tests/integration/test_flow_run_heartbeats.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from processes import wait_for
from skyrun.schemas.states import State, StateType
from skyrun.sdk.heartbeats import FlowRunHeartbeats


class RecordingClient:
    def __init__(self) -> None:
        self.beats: list[uuid.UUID] = []
        self.state_type = StateType.RUNNING
        self.fail = False

    def heartbeat_flow_run(self, flow_run_id: uuid.UUID) -> State:
        if self.fail:
            raise ConnectionError("the server is away")
        self.beats.append(flow_run_id)
        return State(type=self.state_type, name=self.state_type.value.title())


def sender(client: RecordingClient) -> FlowRunHeartbeats:
    stand_in: Any = client
    return FlowRunHeartbeats(stand_in, interval=0.01)


def test_the_thread_ends_with_the_last_run_and_starts_again_with_the_next() -> None:
    client = RecordingClient()
    heartbeats = sender(client)
    first, second = uuid.uuid4(), uuid.uuid4()
    heartbeats.add(first)
    wait_for(lambda: first in client.beats, 10, "a heartbeat of the first run")
    heartbeats.remove(first)
    wait_for(lambda: heartbeats._thread is None, 10, "the thread to end")
    heartbeats.add(second)
    assert heartbeats._thread is not None
    wait_for(lambda: second in client.beats, 10, "a heartbeat of the second run")
    heartbeats.remove(second)


def test_answers_go_to_the_run_that_asked_and_failures_do_not_stop_the_beat() -> None:
    client = RecordingClient()
    heartbeats = sender(client)
    seen: list[StateType] = []
    run_id = uuid.uuid4()
    client.fail = True
    heartbeats.add(run_id, lambda state: seen.append(state.type))
    heartbeats.beat()
    assert seen == []
    client.fail = False
    client.state_type = StateType.CANCELLING
    wait_for(lambda: StateType.CANCELLING in seen, 10, "the CANCELLING answer")
    heartbeats.remove(run_id)
