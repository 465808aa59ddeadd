"""What the client retries, and what it does not: only what is safe to repeat.

The transport is scripted (each step an answer or a transport error), since
what is tested is the client's decision; the fault tests
(tests/acceptance/test_lost_replies.py) show the same against a real server.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from skyrun.client.base import CALLER_RETRIES
from skyrun.client.client import SkyrunClient
from skyrun.client.errors import ServerUnreachable, SkyrunAPIError
from skyrun.client.transport import ApiRequest, Response, TransportError, parse_retry_after
from skyrun.schemas.artifacts import ArtifactCreate
from skyrun.schemas.core import FlowRunCreate
from skyrun.schemas.states import StateCreate, StateType
from skyrun.settings import Settings

API_URL = "http://skyrun.test/api"
Step = Response | TransportError


class ScriptedTransport:
    """Answers each request with the next step: a Response, or a TransportError raised."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.sent: list[ApiRequest] = []

    def send(self, request: ApiRequest) -> Response:
        self.sent.append(request)
        step = self.steps.pop(0)
        if isinstance(step, TransportError):
            raise step
        return step

    def close(self) -> None:
        pass


def lost_reply() -> TransportError:
    return TransportError("Server disconnected without sending a response", maybe_sent=True)


def refused() -> TransportError:
    return TransportError("[Errno 111] Connection refused", maybe_sent=False)


def ok(body: object = None, status: int = 200) -> Response:
    return Response(status, json.dumps(body if body is not None else {}).encode())


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff's sleeps, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


@pytest.fixture(autouse=True)
def _no_developer_settings(settings: Settings) -> None:
    """Every test's Settings() ignores the developer's SKYRUN_* variables and profile."""


def client_with(transport: ScriptedTransport, tmp_path: Path, retries: int = 3) -> SkyrunClient:
    settings = Settings(home=tmp_path, api_url=API_URL, client_retries=retries, client_timeout=30)
    return SkyrunClient(settings, transport=transport)


def test_a_request_that_never_left_is_retried_whatever_its_method(
    tmp_path: Path, waits: list[float]
) -> None:
    transport = ScriptedTransport(refused(), refused(), ok(status=201))
    client = client_with(transport, tmp_path)
    assert client.request("POST", "work_pools", json={"name": "p"}).status_code == 201
    assert len(transport.sent) == 3
    assert len(waits) == 2


@pytest.mark.parametrize(
    ("method", "idempotent", "retried"),
    [
        ("GET", False, True),
        ("PUT", False, True),
        ("DELETE", False, True),
        ("POST", True, True),
        ("POST", False, False),
        ("PATCH", False, False),
    ],
)
def test_after_a_lost_reply_only_what_is_safe_to_repeat_is_sent_again(
    tmp_path: Path, waits: list[float], method: str, idempotent: bool, retried: bool
) -> None:
    transport = ScriptedTransport(lost_reply(), ok())
    client = client_with(transport, tmp_path)
    if retried:
        client.request(method, "things/x", json={}, idempotent=idempotent)
        assert len(transport.sent) == 2
        assert transport.sent[0] == transport.sent[1]  # the very same bytes
    else:
        with pytest.raises(ServerUnreachable) as error:
            client.request(method, "things/x", json={}, idempotent=idempotent)
        assert len(transport.sent) == 1
        assert error.value.maybe_sent
        message = str(error.value)
        assert message == (
            f"the skyrun API at {API_URL} did not answer {method} /things/x (Server "
            "disconnected without sending a response); it may have taken effect, so check "
            "before repeating it"
        )


@pytest.mark.parametrize(("status", "post_retried"), [(429, True), (503, True), (502, False)])
def test_busy_answers_are_retried_when_the_server_did_not_act(
    tmp_path: Path, waits: list[float], status: int, post_retried: bool
) -> None:
    """429 and 503 say the request was not handled; a gateway's 502/504 may come after it was."""
    busy = Response(status, b'{"detail": "busy"}', {"retry-after": "7"})
    transport = ScriptedTransport(busy, ok(status=201))
    client = client_with(transport, tmp_path)
    if post_retried:
        assert client.request("POST", "things", json={}).status_code == 201
        assert waits and waits[0] >= 7  # the server's Retry-After, honoured
    else:
        with pytest.raises(SkyrunAPIError) as error:
            client.request("POST", "things", json={})
        assert (error.value.status_code, error.value.retry_after) == (status, 7.0)
        assert len(transport.sent) == 1
    transport = ScriptedTransport(busy, ok())
    client_with(transport, tmp_path).request("GET", "things")
    assert len(transport.sent) == 2


def test_giving_up_says_how_often_it_tried_in_one_line(tmp_path: Path, waits: list[float]) -> None:
    transport = ScriptedTransport(*[refused()] * 4)
    with pytest.raises(ServerUnreachable) as error:
        client_with(transport, tmp_path, retries=3).request("GET", "flows")
    assert str(error.value) == (
        f"cannot reach the skyrun API at {API_URL} ([Errno 111] Connection refused) (4 tries); "
        "is the server running? (skyrun server start)"
    )
    assert not error.value.maybe_sent
    assert len(waits) == 3


def test_no_retries_when_told_so(tmp_path: Path, waits: list[float]) -> None:
    transport = ScriptedTransport(refused())
    with pytest.raises(ServerUnreachable):
        client_with(transport, tmp_path, retries=0).request("GET", "flows")
    assert (len(transport.sent), waits) == (1, [])


def test_a_timeout_names_the_setting_to_raise(tmp_path: Path, waits: list[float]) -> None:
    timeout = TransportError(
        "timed out after 0s waiting for the answer", maybe_sent=True, timed_out=True
    )
    transport = ScriptedTransport(timeout)
    with pytest.raises(ServerUnreachable) as error:
        client_with(transport, tmp_path, retries=0).request("GET", "flows")
    message = str(error.value)
    assert message == (
        f"the skyrun API at {API_URL} did not answer GET /flows in time: timed out after 0s "
        "waiting for the answer; if the server is slow, raise SKYRUN_CLIENT_TIMEOUT (now 30s)"
    )
    assert error.value.timed_out


def test_a_repeated_delete_that_finds_nothing_has_done_what_was_asked(
    tmp_path: Path, waits: list[float]
) -> None:
    """The first try deleted it and lost its reply; the retry's 404 means it is gone."""
    transport = ScriptedTransport(lost_reply(), Response(404, b'{"detail": "not found"}'))
    client = client_with(transport, tmp_path)
    assert client.request("DELETE", "variables/x").status_code == 204
    # Without a lost reply before it, a 404 is an answer like any other.
    transport = ScriptedTransport(Response(404, b'{"detail": "variable x not found"}'))
    with pytest.raises(SkyrunAPIError, match="not found"):
        client_with(transport, tmp_path).request("DELETE", "variables/x")


def test_state_proposals_carry_their_own_id_through_retries(
    tmp_path: Path, waits: list[float]
) -> None:
    run_id = uuid.uuid4()
    answer = {"decision": "ACCEPT", "state": None}
    transport = ScriptedTransport(lost_reply(), lost_reply(), ok(answer))
    client = client_with(transport, tmp_path)
    client.set_flow_run_state(run_id, StateCreate(type=StateType.RUNNING))
    bodies = [json.loads(r.body or b"") for r in transport.sent]
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]
    assert uuid.UUID(bodies[0]["state"]["id"])
    # Each new proposal is a new state, with a new id.
    transport.steps.append(ok(answer))
    client.set_flow_run_state(run_id, StateCreate(type=StateType.RUNNING))
    assert json.loads(transport.sent[-1].body or b"")["state"]["id"] != bodies[0]["state"]["id"]


def test_creations_carry_a_client_chosen_id_or_key(tmp_path: Path, waits: list[float]) -> None:
    flow_run = {
        "id": str(uuid.uuid4()),
        "flow_id": str(uuid.uuid4()),
        "name": "n",
        "parameters": {},
        "tags": [],
        "parent_flow_run_id": None,
        "parent_task_run_id": None,
        "state": None,
        "expected_start_time": None,
        "start_time": None,
        "end_time": None,
        "run_count": 0,
        "total_run_time": 0.0,
        "created": "2026-01-01T00:00:00Z",
        "updated": "2026-01-01T00:00:00Z",
    }
    artifact = {
        "id": str(uuid.uuid4()),
        "key": None,
        "type": "markdown",
        "description": None,
        "data": "x",
        "flow_run_id": None,
        "task_run_id": None,
        "created": "2026-01-01T00:00:00Z",
    }
    transport = ScriptedTransport(
        lost_reply(), ok(flow_run), lost_reply(), ok(flow_run), lost_reply(), ok(artifact)
    )
    client = client_with(transport, tmp_path)
    client.create_flow_run(FlowRunCreate(flow_id=uuid.uuid4()))
    client.create_deployment_run(uuid.uuid4())
    client.create_artifact(ArtifactCreate(type="markdown", data="x"))
    bodies = [json.loads(r.body or b"") for r in transport.sent]
    assert bodies[0] == bodies[1] and uuid.UUID(bodies[0]["id"])
    assert bodies[2] == bodies[3] and bodies[2]["idempotency_key"]
    assert bodies[4] == bodies[5] and uuid.UUID(bodies[4]["id"])


def test_a_final_state_waits_for_the_server_for_a_bounded_time_logging_once(
    tmp_path: Path, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    """With `retry_for`, the tries are bounded by time, not by SKYRUN_CLIENT_RETRIES."""
    answer = {"decision": "ACCEPT", "state": None}
    transport = ScriptedTransport(*[refused()] * 8, ok(answer))
    client = client_with(transport, tmp_path, retries=1)
    with caplog.at_level(logging.INFO, logger="skyrun.client"):
        client.set_flow_run_state(
            uuid.uuid4(), StateCreate(type=StateType.COMPLETED), retry_for=300
        )
    assert len(transport.sent) == 9
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "proposing COMPLETED" in warnings[0] and "retrying for up to 300s" in warnings[0]


def test_once_the_api_answered_a_lost_server_is_waited_for_by_time_not_by_count(
    tmp_path: Path, waits: list[float]
) -> None:
    """A process that reached the API retries for SKYRUN_CLIENT_RETRY_SECONDS (a restart);
    one that never did gives up after SKYRUN_CLIENT_RETRIES tries (no server at all)."""
    transport = ScriptedTransport(ok(), *[refused()] * 8, ok(), refused(), refused())
    client = client_with(transport, tmp_path, retries=1)
    client.request("GET", "flows")
    client.request("GET", "flows")  # 8 refusals, then the restarted server answers
    assert len(transport.sent) == 10

    # A caller with a loop of its own (heartbeats, polls) asks for the quick tries only.
    with pytest.raises(ServerUnreachable):
        client.request("GET", "flows", retry_for=CALLER_RETRIES)
    assert len(transport.sent) == 12  # SKYRUN_CLIENT_RETRIES=1: two tries

    never = ScriptedTransport(*[refused()] * 3)
    with pytest.raises(ServerUnreachable):
        client_with(never, tmp_path, retries=1).request("GET", "flows")
    assert len(never.sent) == 2

    settings = Settings(home=tmp_path, api_url=API_URL, client_retries=1, client_retry_seconds=0)
    counted = ScriptedTransport(ok(), *[refused()] * 3)
    client = SkyrunClient(settings, transport=counted)
    client.request("GET", "flows")
    with pytest.raises(ServerUnreachable):
        client.request("GET", "flows")
    assert len(counted.sent) == 3


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert Response(503, b"", {"retry-after": "2"}).retry_after == 2.0
    assert Response(503, b"").retry_after is None


def test_a_request_that_works_loads_no_retry_machinery(tmp_path: Path) -> None:
    """The backoff (tenacity) is imported after a first failure only."""
    script = textwrap.dedent(
        f"""
        import sys
        from skyrun.client.client import SkyrunClient
        from skyrun.client.transport import Response
        from skyrun.settings import Settings

        class Answering:
            def send(self, request):
                return Response(200, b'{{"id": "1"}}')
            def close(self):
                pass

        client = SkyrunClient(Settings(home={str(tmp_path)!r}, api_url="http://x/api"), Answering())
        client.request("GET", "flows")
        print("tenacity" in sys.modules, "skyrun.retries" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "False"]
