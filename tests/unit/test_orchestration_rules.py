"""Flow-run transition rules and run-time bookkeeping: pure functions, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from skyrun.schemas.orchestration import Decision
from skyrun.schemas.states import DEFAULT_NAMES, TERMINAL_TYPES, State, StateType
from skyrun.server.orchestration.bookkeeping import RunTimes, advance_times
from skyrun.server.orchestration.rules import decide_transition

S = StateType
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
NON_TERMINAL = [t for t in StateType if t not in TERMINAL_TYPES]


def state(
    state_type: StateType,
    *,
    at: datetime = NOW,
    name: str | None = None,
    scheduled_time: datetime | None = None,
    message: str | None = None,
) -> State:
    return State(
        type=state_type,
        name=name or DEFAULT_NAMES[state_type],
        timestamp=at,
        scheduled_time=scheduled_time,
        message=message,
    )


# -- accept -----------------------------------------------------------------------


@pytest.mark.parametrize("proposed_type", list(StateType))
def test_a_new_run_accepts_any_initial_state(proposed_type: StateType) -> None:
    proposed = state(proposed_type)
    outcome = decide_transition(None, proposed, now=NOW)
    assert outcome.decision == Decision.ACCEPT
    assert outcome.state == proposed


# Every transition the rules allow without force (the scheduled-time check aside).
ALLOWED = [
    (S.SCHEDULED, S.SCHEDULED),
    (S.SCHEDULED, S.PENDING),
    (S.SCHEDULED, S.RUNNING),
    (S.SCHEDULED, S.CANCELLED),
    (S.SCHEDULED, S.CRASHED),
    (S.SCHEDULED, S.FAILED),
    (S.PENDING, S.SCHEDULED),
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.CANCELLING),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.CRASHED),
    (S.PENDING, S.FAILED),
    (S.PENDING, S.COMPLETED),
    (S.RUNNING, S.SCHEDULED),
    (S.RUNNING, S.PAUSED),
    (S.RUNNING, S.CANCELLING),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CRASHED),
    (S.PAUSED, S.RUNNING),
    (S.PAUSED, S.SCHEDULED),
    (S.PAUSED, S.CANCELLING),
    (S.PAUSED, S.CANCELLED),
    (S.PAUSED, S.FAILED),
    (S.PAUSED, S.CRASHED),
    (S.PAUSED, S.COMPLETED),
    (S.CANCELLING, S.CANCELLED),
    (S.CANCELLING, S.COMPLETED),
    (S.CANCELLING, S.FAILED),
    (S.CANCELLING, S.CRASHED),
]


@pytest.mark.parametrize(("current_type", "proposed_type"), ALLOWED)
def test_allowed_transitions_are_accepted_unchanged(
    current_type: StateType, proposed_type: StateType
) -> None:
    current = state(current_type, at=NOW - timedelta(seconds=5))
    proposed = state(proposed_type, message="why")
    outcome = decide_transition(current, proposed, now=NOW)
    assert outcome.decision == Decision.ACCEPT
    assert outcome.state == proposed
    assert outcome.delay_seconds is None


# -- disallowed -------------------------------------------------------------------

# The complement of ALLOWED among non-terminal current states, minus the pairs
# that have a rule of their own (double claims, cancelling, scheduled-cancel).
SPECIAL = {
    (S.PENDING, S.PENDING),
    (S.RUNNING, S.RUNNING),
    (S.SCHEDULED, S.CANCELLING),
    (S.CANCELLING, S.PENDING),
    (S.CANCELLING, S.RUNNING),
    (S.CANCELLING, S.SCHEDULED),
}
DISALLOWED = [
    (current, proposed)
    for current in NON_TERMINAL
    for proposed in StateType
    if (current, proposed) not in set(ALLOWED) | SPECIAL
]


def test_disallowed_list_covers_the_expected_pairs() -> None:
    assert set(DISALLOWED) == {
        (S.SCHEDULED, S.COMPLETED),
        (S.SCHEDULED, S.PAUSED),
        (S.PENDING, S.PAUSED),
        (S.RUNNING, S.PENDING),
        (S.PAUSED, S.PENDING),
        (S.PAUSED, S.PAUSED),
        (S.CANCELLING, S.CANCELLING),
        (S.CANCELLING, S.PAUSED),
    }


@pytest.mark.parametrize(("current_type", "proposed_type"), DISALLOWED)
def test_disallowed_transitions_are_rejected_with_a_reason(
    current_type: StateType, proposed_type: StateType
) -> None:
    current = state(current_type)
    outcome = decide_transition(current, state(proposed_type), now=NOW)
    assert outcome.decision == Decision.REJECT
    assert outcome.state == current
    assert outcome.reason == (
        f"a run cannot move from {current_type.value} to {proposed_type.value}"
    )


@pytest.mark.parametrize(("current_type", "proposed_type"), DISALLOWED)
def test_force_accepts_disallowed_transitions(
    current_type: StateType, proposed_type: StateType
) -> None:
    proposed = state(proposed_type)
    outcome = decide_transition(state(current_type), proposed, now=NOW, force=True)
    assert outcome.decision == Decision.ACCEPT
    assert outcome.state == proposed


# -- terminal states --------------------------------------------------------------


@pytest.mark.parametrize("current_type", sorted(TERMINAL_TYPES))
@pytest.mark.parametrize("proposed_type", list(StateType))
def test_a_finished_run_rejects_every_state(
    current_type: StateType, proposed_type: StateType
) -> None:
    current = state(current_type)
    outcome = decide_transition(current, state(proposed_type), now=NOW)
    assert outcome.decision == Decision.REJECT
    assert outcome.state == current
    assert outcome.reason is not None
    assert current_type.value in outcome.reason
    assert "force" in outcome.reason


@pytest.mark.parametrize("current_type", sorted(TERMINAL_TYPES))
def test_force_reopens_a_finished_run(current_type: StateType) -> None:
    proposed = state(S.SCHEDULED, scheduled_time=NOW)
    outcome = decide_transition(state(current_type), proposed, now=NOW, force=True)
    assert outcome.decision == Decision.ACCEPT
    assert outcome.state == proposed


# -- double claims and double starts ----------------------------------------------


def test_pending_to_pending_aborts_a_second_claim() -> None:
    current = state(S.PENDING, at=NOW - timedelta(seconds=1))
    outcome = decide_transition(current, state(S.PENDING), now=NOW)
    assert outcome.decision == Decision.ABORT
    assert outcome.state == current
    assert outcome.reason is not None
    assert "already PENDING" in outcome.reason


def test_running_to_running_aborts_a_second_start() -> None:
    current = state(S.RUNNING, at=NOW - timedelta(seconds=1))
    outcome = decide_transition(current, state(S.RUNNING, name="Retrying"), now=NOW)
    assert outcome.decision == Decision.ABORT
    assert outcome.state == current
    assert outcome.reason is not None
    assert "already RUNNING" in outcome.reason


def test_force_overrides_a_double_start() -> None:
    proposed = state(S.RUNNING)
    outcome = decide_transition(state(S.RUNNING), proposed, now=NOW, force=True)
    assert outcome.decision == Decision.ACCEPT
    assert outcome.state == proposed


# -- cancellation -----------------------------------------------------------------


def test_cancelling_a_scheduled_run_cancels_it_directly() -> None:
    current = state(S.SCHEDULED, scheduled_time=NOW + timedelta(hours=1))
    proposed = state(S.CANCELLING, message="stopped by alice")
    outcome = decide_transition(current, proposed, now=NOW)
    assert outcome.decision == Decision.ACCEPT
    assert outcome.state is not None
    assert outcome.state.type == S.CANCELLED
    assert outcome.state.name == "Cancelled"
    assert outcome.state.message == "stopped by alice"
    assert outcome.state.id == proposed.id
    assert outcome.reason is not None
    assert "cancelled directly" in outcome.reason


@pytest.mark.parametrize("current_type", [S.PENDING, S.RUNNING, S.PAUSED])
def test_cancelling_a_started_run_is_accepted_as_cancelling(current_type: StateType) -> None:
    proposed = state(S.CANCELLING)
    outcome = decide_transition(state(current_type), proposed, now=NOW)
    assert outcome.decision == Decision.ACCEPT
    assert outcome.state == proposed


@pytest.mark.parametrize("proposed_type", [S.PENDING, S.RUNNING, S.SCHEDULED])
def test_a_cancelling_run_cannot_start_again(proposed_type: StateType) -> None:
    current = state(S.CANCELLING)
    outcome = decide_transition(current, state(proposed_type), now=NOW)
    assert outcome.decision == Decision.ABORT
    assert outcome.state == current
    assert outcome.reason == "the run is being cancelled"


# -- scheduled time ---------------------------------------------------------------


@pytest.mark.parametrize("proposed_type", [S.PENDING, S.RUNNING])
def test_starting_before_the_scheduled_time_waits_for_the_remaining_delay(
    proposed_type: StateType,
) -> None:
    due = NOW + timedelta(seconds=90)
    current = state(S.SCHEDULED, at=NOW - timedelta(minutes=1), scheduled_time=due)
    outcome = decide_transition(current, state(proposed_type), now=NOW)
    assert outcome.decision == Decision.WAIT
    assert outcome.state == current
    assert outcome.delay_seconds == 90.0
    assert outcome.reason is not None
    assert str(due) in outcome.reason


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(seconds=-30)])
def test_starting_at_or_after_the_scheduled_time_is_accepted(offset: timedelta) -> None:
    current = state(S.SCHEDULED, scheduled_time=NOW + offset)
    proposed = state(S.PENDING)
    outcome = decide_transition(current, proposed, now=NOW)
    assert outcome.decision == Decision.ACCEPT
    assert outcome.state == proposed


def test_a_scheduled_run_without_a_time_starts_at_once() -> None:
    outcome = decide_transition(state(S.SCHEDULED), state(S.RUNNING), now=NOW)
    assert outcome.decision == Decision.ACCEPT


@pytest.mark.parametrize("proposed_type", [S.SCHEDULED, S.CANCELLED, S.FAILED, S.CRASHED])
def test_a_future_schedule_does_not_delay_other_transitions(proposed_type: StateType) -> None:
    current = state(S.SCHEDULED, scheduled_time=NOW + timedelta(days=1))
    proposed = state(proposed_type, scheduled_time=NOW + timedelta(days=2))
    outcome = decide_transition(current, proposed, now=NOW)
    assert outcome.decision == Decision.ACCEPT
    assert outcome.state == proposed


def test_force_skips_the_wait() -> None:
    current = state(S.SCHEDULED, scheduled_time=NOW + timedelta(hours=2))
    proposed = state(S.RUNNING, name="Retrying")
    outcome = decide_transition(current, proposed, now=NOW, force=True)
    assert outcome.decision == Decision.ACCEPT
    assert outcome.state == proposed


# -- bookkeeping ------------------------------------------------------------------


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_creating_a_run_in_running_starts_its_clock() -> None:
    times = advance_times(RunTimes(), None, state(S.RUNNING, at=at(0)))
    assert times == RunTimes(start_time=at(0), end_time=None, run_count=1, total_run_time=0.0)


def test_a_scheduled_state_sets_the_expected_start_time() -> None:
    times = advance_times(RunTimes(), None, state(S.SCHEDULED, at=at(0), scheduled_time=at(600)))
    assert times.expected_start_time == at(600)
    assert times.run_count == 0
    assert times.start_time is None


def test_a_scheduled_state_without_a_time_keeps_the_expected_start_time() -> None:
    before = RunTimes(expected_start_time=at(5))
    times = advance_times(before, state(S.PENDING, at=at(0)), state(S.SCHEDULED, at=at(1)))
    assert times.expected_start_time == at(5)


def test_a_full_run_with_a_retry() -> None:
    pending = state(S.PENDING, at=at(0))
    running = state(S.RUNNING, at=at(10))
    awaiting = state(S.SCHEDULED, at=at(13), name="AwaitingRetry", scheduled_time=at(20))
    retrying = state(S.RUNNING, at=at(20), name="Retrying")
    completed = state(S.COMPLETED, at=at(24.5))

    times = advance_times(RunTimes(), None, pending)
    assert times == RunTimes()
    times = advance_times(times, pending, running)
    assert (times.run_count, times.start_time, times.total_run_time) == (1, at(10), 0.0)
    times = advance_times(times, running, awaiting)
    assert (times.run_count, times.total_run_time, times.end_time) == (1, 3.0, None)
    assert times.expected_start_time == at(20)
    times = advance_times(times, awaiting, retrying)
    assert (times.run_count, times.start_time, times.total_run_time) == (2, at(10), 3.0)
    times = advance_times(times, retrying, completed)
    assert times == RunTimes(
        start_time=at(10),
        end_time=at(24.5),
        run_count=2,
        total_run_time=7.5,
        expected_start_time=at(20),
    )


@pytest.mark.parametrize("final_type", sorted(TERMINAL_TYPES))
def test_every_terminal_state_sets_the_end_time(final_type: StateType) -> None:
    before = RunTimes(start_time=at(0), run_count=1)
    times = advance_times(before, state(S.RUNNING, at=at(0)), state(final_type, at=at(2)))
    assert times.end_time == at(2)
    assert times.total_run_time == 2.0


def test_forcing_a_finished_run_back_clears_the_end_time() -> None:
    before = RunTimes(start_time=at(0), end_time=at(5), run_count=1, total_run_time=5.0)
    times = advance_times(before, state(S.FAILED, at=at(5)), state(S.SCHEDULED, at=at(6)))
    assert times.end_time is None
    assert times.total_run_time == 5.0
    assert times.start_time == at(0)


def test_time_outside_running_is_not_counted() -> None:
    before = RunTimes(start_time=at(0), run_count=1, total_run_time=1.0)
    times = advance_times(before, state(S.PAUSED, at=at(1)), state(S.RUNNING, at=at(100)))
    assert times.total_run_time == 1.0
    assert times.run_count == 2


def test_a_clock_going_backwards_never_subtracts_run_time() -> None:
    before = RunTimes(start_time=at(10), run_count=1, total_run_time=4.0)
    times = advance_times(before, state(S.RUNNING, at=at(10)), state(S.COMPLETED, at=at(9)))
    assert times.total_run_time == 4.0


def test_advance_times_does_not_mutate_its_input() -> None:
    before = RunTimes()
    advance_times(before, None, state(S.RUNNING, at=at(0)))
    assert before == RunTimes()
