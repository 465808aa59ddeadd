"""Parameters a flow is called with are recorded faithfully, without being consumed."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import pytest

from skyrun import flow, get_run_logger
from skyrun.client.client import get_client
from skyrun.schemas.core import FlowRun, FlowRunFilter
from skyrun.schemas.limits import MAX_LOG_MESSAGE_LENGTH

pytestmark = pytest.mark.usefixtures("sdk_home")


def only_run(flow_name: str) -> FlowRun:
    page = get_client().filter_flow_runs(FlowRunFilter(flow_name=flow_name))
    assert page.count == 1, [r.name for r in page.items]
    return page.items[0]


def test_a_generator_parameter_reaches_the_flow_whole() -> None:
    @flow
    def total(numbers: Any) -> int:
        return sum(numbers)

    @flow
    def total_typed(numbers: Iterable[int]) -> int:
        return sum(numbers)

    assert total(i for i in range(5)) == 10
    assert total_typed(i for i in range(5)) == 10
    run = only_run("total")
    assert run.parameters["numbers"].startswith("<generator object"), run.parameters
    assert run.state is not None and run.state.type.value == "COMPLETED"


def test_generators_inside_containers_are_not_consumed() -> None:
    @flow
    def first_of_each(groups: dict[str, Any]) -> list[int]:
        return [next(iter(g)) for g in groups.values()]

    assert first_of_each({"a": (i for i in [7, 8]), "b": [1, 2]}) == [7, 1]
    recorded = only_run("first-of-each").parameters["groups"]
    assert recorded["b"] == [1, 2]
    assert recorded["a"].startswith("<generator object")


def test_bytes_parameters_are_recorded_as_text_or_repr() -> None:
    @flow
    def size(data: bytes) -> int:
        return len(data)

    assert size(b"\xff\xfe\x00") == 3  # not UTF-8: before, UnicodeDecodeError and no run
    assert size(b"plain") == 5
    page = get_client().filter_flow_runs(FlowRunFilter(flow_name="size", sort="created_asc"))
    assert [run.parameters["data"] for run in page.items] == ["b'\\xff\\xfe\\x00'", "plain"]


def test_non_finite_numbers_are_recorded_as_strings_not_null() -> None:
    @flow
    def scale(factor: float, limits: list[float]) -> float:
        return factor

    assert scale(float("nan"), [float("inf"), -float("inf"), 1.5]) != 0
    recorded = only_run("scale").parameters
    assert recorded == {"factor": "NaN", "limits": ["Infinity", "-Infinity", 1.5]}


def test_a_failed_flow_logs_its_end_at_error(caplog: pytest.LogCaptureFixture) -> None:
    @flow
    def broken() -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.DEBUG, logger="skyrun"), pytest.raises(ValueError):
        broken()
    finished = [r for r in caplog.records if r.getMessage().startswith("Finished in state")]
    assert [(r.levelno, r.getMessage()) for r in finished] == [
        (logging.ERROR, "Finished in state Failed(ValueError: boom)")
    ]


def test_a_log_line_over_the_api_limit_is_cut_not_lost() -> None:
    @flow
    def chatty() -> None:
        get_run_logger().info("x" * (MAX_LOG_MESSAGE_LENGTH + 10))
        get_run_logger().info("after")

    chatty()
    run = only_run("chatty")
    messages = [log.message for log in get_client().read_logs(run.id, limit=100)]
    long = [m for m in messages if m.startswith("xxx")]
    assert len(long) == 1 and len(long[0]) == MAX_LOG_MESSAGE_LENGTH
    assert long[0].endswith("limit for a log line]")
    assert "after" in messages
