"""Flow-run transition rules: decide a proposed state against the current one.

Everything here is pure: no database, no clock except the `now` passed in.
The server and the embedded mode both call `decide_transition`, so a flow run
is orchestrated identically wherever it is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from skyrun.schemas.orchestration import Decision
from skyrun.schemas.states import TERMINAL_TYPES, State, StateType

S = StateType

# Where a run may go from each non-terminal state (without `force`).
_ALLOWED: dict[StateType, frozenset[StateType]] = {
    S.SCHEDULED: frozenset({S.SCHEDULED, S.PENDING, S.RUNNING, S.CANCELLED, S.CRASHED, S.FAILED}),
    S.PENDING: frozenset(
        {S.SCHEDULED, S.RUNNING, S.CANCELLING, S.CANCELLED, S.CRASHED, S.FAILED, S.COMPLETED}
    ),
    S.RUNNING: frozenset(
        {S.SCHEDULED, S.PAUSED, S.CANCELLING, S.CANCELLED, S.COMPLETED, S.FAILED, S.CRASHED}
    ),
    S.PAUSED: frozenset(
        {S.RUNNING, S.SCHEDULED, S.CANCELLING, S.CANCELLED, S.FAILED, S.CRASHED, S.COMPLETED}
    ),
    S.CANCELLING: frozenset({S.CANCELLED, S.COMPLETED, S.FAILED, S.CRASHED}),
}


@dataclass(frozen=True)
class Outcome:
    """A decision, the state to record when accepted, and why."""

    decision: Decision
    state: State | None = None
    reason: str | None = None
    delay_seconds: float | None = None


def decide_transition(
    current: State | None, proposed: State, *, now: datetime, force: bool = False
) -> Outcome:
    """Decide whether a flow run may move from `current` to `proposed`.

    Args:
        current: the run's state now, or None for a run being created.
        proposed: the state the caller asks for (defaults already filled in).
        now: the server's clock, for scheduled-time checks.
        force: skip the rules (an operator's explicit override).

    Returns:
        The outcome; on ACCEPT its `state` is what to record (it may differ
        from `proposed`, e.g. cancelling a run that never started cancels it
        outright).
    """
    if current is None or force:
        return Outcome(Decision.ACCEPT, proposed)

    if current.type in TERMINAL_TYPES:
        return Outcome(
            Decision.REJECT,
            current,
            f"the run is already {current.type.value}; pass force to change a finished run",
        )

    if proposed.type == S.CANCELLING and current.type == S.SCHEDULED:
        # Nothing was launched for a run that is only scheduled: cancel it now.
        cancelled = proposed.model_copy(update={"type": S.CANCELLED, "name": "Cancelled"})
        return Outcome(Decision.ACCEPT, cancelled, "the run had not started; cancelled directly")

    if proposed.type == current.type and proposed.type in (S.PENDING, S.RUNNING):
        return Outcome(
            Decision.ABORT,
            current,
            f"the run is already {current.type.value}; another process is handling it",
        )

    if current.type == S.CANCELLING and proposed.type in (S.PENDING, S.RUNNING, S.SCHEDULED):
        return Outcome(Decision.ABORT, current, "the run is being cancelled")

    if proposed.type not in _ALLOWED[current.type]:
        return Outcome(
            Decision.REJECT,
            current,
            f"a run cannot move from {current.type.value} to {proposed.type.value}",
        )

    if (
        current.type == S.SCHEDULED
        and proposed.type in (S.PENDING, S.RUNNING)
        and current.scheduled_time is not None
        and current.scheduled_time > now
    ):
        delay = (current.scheduled_time - now).total_seconds()
        return Outcome(
            Decision.WAIT, current, f"the run is scheduled for {current.scheduled_time}", delay
        )

    return Outcome(Decision.ACCEPT, proposed)
