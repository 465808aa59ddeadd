"""Printing a flow run's log lines and states, and following them until the run ends.

`flow-run logs [--follow]` and `deployment run --watch` share this one loop.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import typer

from skyrun.cli.errors import CLIError
from skyrun.cli.output import safe_text
from skyrun.schemas.core import FlowRun, Log
from skyrun.schemas.states import State, utcnow

if TYPE_CHECKING:
    from skyrun.client.client import SkyrunClient

POLL_SECONDS = 0.5
# The SDK flushes a run's last log lines just after it proposes the final state;
# keep following this long after the run ends so those lines are not missed.
SETTLE_SECONDS = 1.5
LOG_PAGE = 500


def describe_state(state: State | None) -> str:
    """e.g. "COMPLETED", or "SCHEDULED (Late)" for a named sub-state."""
    if state is None:
        return "-"
    if state.name.upper() == state.type.value:
        return state.type.value
    return f"{state.type.value} ({safe_text(state.name)})"


def _timestamp(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def format_log(log: Log) -> str:
    """`timestamp | LEVEL    | message`, the message's control characters escaped."""
    level = logging.getLevelName(log.level)
    return f"{_timestamp(log.timestamp)} | {level:<8} | {safe_text(log.message, multiline=True)}"


def format_state(state: State) -> str:
    message = f" ({safe_text(state.message, multiline=True)})" if state.message else ""
    return f"{_timestamp(state.timestamp)} | STATE    | {describe_state(state)}{message}"


def new_logs(
    api: SkyrunClient, run_id: uuid.UUID, after_id: int | None, min_level: int = 0
) -> list[Log]:
    """Every log line of the run after `after_id`, page by page."""
    logs: list[Log] = []
    while True:
        page = api.read_logs(run_id, after_id=after_id, min_level=min_level, limit=LOG_PAGE)
        logs.extend(page)
        if len(page) < LOG_PAGE:
            return logs
        after_id = page[-1].id


def has_settled(run: FlowRun, ended_seen_at: float | None) -> bool:
    """Whether the run ended long enough ago that its last log lines have been flushed."""
    if run.state is None or not run.state.is_final:
        return False
    since_end = (utcnow() - run.state.timestamp).total_seconds()
    seen_for = time.monotonic() - ended_seen_at if ended_seen_at is not None else 0.0
    return max(since_end, seen_for) >= SETTLE_SECONDS


def follow_flow_run(
    api: SkyrunClient,
    run_id: uuid.UUID,
    *,
    min_level: int = 0,
    with_states: bool = False,
    timeout: float | None = None,
) -> State | None:
    """Print the run's log lines (and, `with_states`, its state changes) in time order,
    from the first, until it has ended and its last lines have arrived.

    Returns:
        The run's final state.

    Raises:
        CLIError: `timeout` seconds passed before the run ended.
    """
    deadline = time.monotonic() + timeout if timeout is not None else None
    printed_states: set[uuid.UUID] = set()
    last_log_id: int | None = None
    ended_seen_at: float | None = None
    while True:
        # The run first, then its history and logs: once the run has settled, an
        # empty read of the logs means every line it wrote has been printed.
        run = api.read_flow_run(run_id)
        if ended_seen_at is None and run.state is not None and run.state.is_final:
            ended_seen_at = time.monotonic()
        settled = has_settled(run, ended_seen_at)
        states = []
        if with_states:
            states = [s for s in api.read_flow_run_states(run_id) if s.id not in printed_states]
        logs = new_logs(api, run_id, last_log_id, min_level)
        lines = [(s.timestamp, format_state(s)) for s in states]
        lines += [(log.timestamp, format_log(log)) for log in logs]
        for _, line in sorted(lines, key=lambda item: item[0]):
            typer.echo(line)
        printed_states.update(s.id for s in states)
        if settled and not logs:
            return run.state
        if logs:
            last_log_id = logs[-1].id
        if deadline is not None and time.monotonic() >= deadline and ended_seen_at is None:
            raise CLIError(
                f"stopped watching flow run {run.name!r} after {timeout:g}s; it is still "
                f"{describe_state(run.state)} "
                f"(follow it with: skyrun flow-run logs {run_id} --follow)"
            )
        time.sleep(POLL_SECONDS)
