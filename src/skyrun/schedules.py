"""Schedule models and occurrence computation for skyrun deployments.

Three schedule kinds are supported: cron expressions, fixed intervals and
RFC 5545 recurrence rules. All of them are plain pydantic models and the
functions here are pure: no I/O beyond reading time-zone data.

Time-zone semantics (shared by cron, whole-day intervals and rrules): the
schedule produces *local wall-clock* times in its time zone, which are then
converted to UTC.

* A wall-clock time that does not exist locally (it falls in a spring-forward
  gap, e.g. 02:30 on 2026-03-08 in America/New_York) is **run once, shifted
  forward by the length of the gap** (02:30 EST does not exist, so the run is
  at 03:30 EDT). If the shifted instant coincides with another occurrence, it
  is emitted only once.
* A wall-clock time that occurs twice (fall-back) runs **once**, at its first
  occurrence (the earlier UTC instant). Consequently an hourly cron yields no
  run for the repeated hour on a fall-back day; it never yields duplicates.

Every returned datetime is timezone-aware UTC.

Computing occurrences is bounded: no rule is ever walked from a DTSTART far in
the past (rules that repeat every N seconds, minutes, hours, days or weeks are
moved to "now" first, COUNT included), and every computation has a budget of
CPU time (`COMPUTE_BUDGET_SECONDS`, counted for the computing thread only, so
a busy machine does not shrink it), so a rule that matches no date or almost
none (``FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30``, which dateutil would search up to
the year 9999) fails fast with `ScheduleTooCostly`. A schedule whose next
occurrence cannot be computed within the budget is refused when it is parsed.
"""

from __future__ import annotations

import heapq
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from types import FrameType
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from dateutil.rrule import DAILY, HOURLY, MINUTELY, SECONDLY, WEEKLY, rrule, rruleset, rrulestr
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

__all__ = [
    "SCHEDULE_ADAPTER",
    "CronSchedule",
    "IntervalSchedule",
    "RRuleSchedule",
    "Schedule",
    "ScheduleTooCostly",
    "accept_schedule",
    "describe_schedule",
    "next_run_times",
    "parse_schedule",
]

_DAY_SECONDS = 86_400
# The most CPU time one computation of occurrences may take. Real schedules need
# milliseconds (a leap-day rule's next occurrence, four years of days away, ~10
# ms); a rule matching no date takes seconds to minutes.
COMPUTE_BUDGET_SECONDS = 0.5
# How many calls pass between two looks at the clock (reading it costs more than a call).
_CALLS_PER_CHECK = 32
_DEFAULT_ANCHOR = datetime(2020, 1, 1)
_RRULE_PERIODS = {
    SECONDLY: timedelta(seconds=1),
    MINUTELY: timedelta(minutes=1),
    HOURLY: timedelta(hours=1),
    DAILY: timedelta(days=1),
    WEEKLY: timedelta(weeks=1),
}


T = TypeVar("T")


class ScheduleTooCostly(ValueError):
    """Computing a schedule's occurrences took more than `COMPUTE_BUDGET_SECONDS` of CPU."""


@contextmanager
def _cpu_budget(what: str) -> Iterator[None]:
    """Raise ScheduleTooCostly in the code inside once it has used the CPU budget."""
    previous = sys.gettrace()
    deadline = time.thread_time() + COMPUTE_BUDGET_SECONDS
    calls = 0

    def check(frame: FrameType, event: str, arg: Any) -> None:
        # A global trace function is called at each Python call (and generator
        # resume) and can raise into it: dateutil's search has no other way out.
        # Returning None asks for no per-line events, so the cost stays small.
        nonlocal calls
        calls += 1
        if calls % _CALLS_PER_CHECK == 0 and time.thread_time() > deadline:
            raise ScheduleTooCostly(
                f"{what} is too costly to compute: its next occurrences were not found "
                f"within {COMPUTE_BUDGET_SECONDS:g} s of computation (a rule that matches no "
                "date, such as February 30, or almost none, or a COUNT with BYxxx parts "
                "counted from a DTSTART long ago); simplify the rule, or give a later "
                "DTSTART or an UNTIL instead of the COUNT"
            )

    sys.settrace(check)
    try:
        yield
    finally:
        # An exception from the trace function has unset it already; restore what was there.
        sys.settrace(previous)


def _bounded(what: str, compute: Callable[[], T]) -> T:
    """`compute()` within the CPU budget; ScheduleTooCostly (naming `what`) beyond it."""
    with _cpu_budget(what):
        return compute()


def _zone(name: str) -> ZoneInfo:
    """Return the IANA zone called ``name``.

    Raises:
        ValueError: If no such zone exists.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


TimeZoneName = Annotated[str, AfterValidator(lambda name: _zone(name).key)]


def _build_rrule(text: str, tz: tzinfo) -> rrule | rruleset:
    """Parse ``text`` with a default DTSTART of 2020-01-01 00:00 in ``tz``."""
    return rrulestr(text, dtstart=_DEFAULT_ANCHOR.replace(tzinfo=tz), tzids=_zone)


class CronSchedule(BaseModel):
    """Run at the times matched by a cron expression, in a given time zone."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["cron"] = "cron"
    cron: str
    timezone: TimeZoneName = "UTC"
    day_or: bool = True

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        try:
            croniter(value)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"invalid cron expression {value!r}: {exc}") from exc
        return value


class IntervalSchedule(BaseModel):
    """Run every ``interval`` seconds, on the grid ``anchor_date + k * interval``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["interval"] = "interval"
    interval: float
    anchor_date: datetime | None = None
    timezone: TimeZoneName = "UTC"

    @field_validator("interval", mode="before")
    @classmethod
    def _timedelta_to_seconds(cls, value: Any) -> Any:
        return value.total_seconds() if isinstance(value, timedelta) else value

    @field_validator("interval")
    @classmethod
    def _positive_interval(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"interval must be a finite number of seconds > 0, got {value}")
        try:
            too_small = timedelta(seconds=value) == timedelta(0)
        except OverflowError as exc:
            raise ValueError(f"interval {value} seconds is too large") from exc
        if too_small:
            raise ValueError(f"interval {value} seconds is shorter than one microsecond")
        return value


class RRuleSchedule(BaseModel):
    """Run at the occurrences of an RFC 5545 recurrence rule."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["rrule"] = "rrule"
    rrule: str
    timezone: TimeZoneName = "UTC"

    @field_validator("rrule")
    @classmethod
    def _valid_rrule(cls, value: str) -> str:
        try:
            _build_rrule(value, UTC)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            raise ValueError(f"invalid rrule string {value!r}: {exc}") from exc
        return value


Schedule = Annotated[CronSchedule | IntervalSchedule | RRuleSchedule, Field(discriminator="kind")]
SCHEDULE_ADAPTER: TypeAdapter[Schedule] = TypeAdapter(Schedule)
_KINDS = ("cron", "interval", "rrule")


def parse_schedule(data: Mapping[str, Any]) -> Schedule:
    """Validate a mapping into the matching schedule model.

    Args:
        data: Schedule fields. ``kind`` may be omitted, in which case it is
            inferred from whichever of ``cron``/``interval``/``rrule`` is present.

    Returns:
        A ``CronSchedule``, ``IntervalSchedule`` or ``RRuleSchedule``.

    Raises:
        ValueError: If the kind cannot be inferred; ``pydantic.ValidationError``
            (a ``ValueError``) if the fields are invalid.
    """
    payload = dict(data)
    if "kind" not in payload:
        present = [key for key in _KINDS if key in payload]
        if len(present) != 1:
            found = ", ".join(present) or "none"
            raise ValueError(
                "cannot infer schedule kind: expected exactly one of 'cron', 'interval', "
                f"'rrule' (found: {found})"
            )
        payload["kind"] = present[0]
    return SCHEDULE_ADAPTER.validate_python(payload)


def accept_schedule(data: Mapping[str, Any]) -> Schedule:
    """Parse a schedule someone is saving, refusing one the scheduler could not compute.

    `parse_schedule`, then the first occurrence after now, as the scheduler will
    ask for it: a rule that cannot give it within the budget would fail every
    scheduler pass. (Schedules already saved are parsed with `parse_schedule`.)

    Raises:
        ValueError: As `parse_schedule`; `ScheduleTooCostly` for such a rule.
    """
    schedule = parse_schedule(data)
    try:
        next_run_times(schedule, after=datetime.now(UTC), limit=1)
    except ScheduleTooCostly:
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise ValueError(f"{describe_schedule(schedule)} cannot be computed: {exc}") from exc
    return schedule


def describe_schedule(schedule: Schedule) -> str:
    """Return a short human-readable description of ``schedule``.

    Args:
        schedule: Any schedule model.

    Returns:
        For example ``"cron '0 9 * * *' (America/New_York)"``, ``"every 3600s"``
        or ``"rrule 'FREQ=DAILY'"``. Intervals and rrules mention the time
        zone only when it is not UTC.
    """
    if isinstance(schedule, CronSchedule):
        return f"cron {schedule.cron!r} ({schedule.timezone})"
    zone = "" if schedule.timezone == "UTC" else f" ({schedule.timezone})"
    if isinstance(schedule, IntervalSchedule):
        seconds = schedule.interval
        shown = int(seconds) if seconds.is_integer() else seconds
        return f"every {shown}s{zone}"
    return f"rrule {' '.join(schedule.rrule.split())!r}{zone}"


def next_run_times(
    schedule: Schedule,
    *,
    after: datetime,
    until: datetime | None = None,
    limit: int = 100,
) -> list[datetime]:
    """Compute the upcoming occurrences of ``schedule``.

    Args:
        schedule: Any schedule model.
        after: Aware datetime; only occurrences strictly later are returned.
        until: Optional aware datetime; occurrences later than it are dropped
            (an occurrence exactly at ``until`` is kept).
        limit: Maximum number of occurrences to return.

    Returns:
        Distinct aware UTC datetimes in increasing order.

    Raises:
        ValueError: If ``after`` or ``until`` is naive.
        ScheduleTooCostly: If the occurrences cannot be found within the budget.
    """
    for name, value in (("after", after), ("until", until)):
        if value is not None and value.utcoffset() is None:
            raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    if limit <= 0 or (until is not None and until <= after):
        return []
    return _bounded(describe_schedule(schedule), lambda: _run_times(schedule, after, until, limit))


def _run_times(
    schedule: Schedule, after: datetime, until: datetime | None, limit: int
) -> list[datetime]:
    tz = _zone(schedule.timezone)
    if isinstance(schedule, CronSchedule):
        walls = _cron_walls(schedule, after, tz)
    elif isinstance(schedule, RRuleSchedule):
        walls = _rrule_walls(schedule, after, tz)
    elif schedule.interval % _DAY_SECONDS == 0:
        walls = _daily_walls(schedule, after, tz)
    else:
        return _absolute_interval(schedule, after, until, limit)
    return _collect(walls, after, until, limit)


def _collect(
    walls: Iterator[datetime], after: datetime, until: datetime | None, limit: int
) -> list[datetime]:
    """Turn local wall-clock candidates into sorted, distinct UTC run times.

    ``walls`` must be aware datetimes (fold=0) in non-decreasing wall-clock
    order. Existing times map to UTC monotonically; gap times map to a later
    instant (PEP 495: the pre-transition offset), so they may overtake later
    candidates. They are therefore buffered in a heap and released once an
    existing candidate proves nothing earlier can still arrive.
    """
    result: list[datetime] = []
    pending: list[datetime] = []

    def release(upto: datetime | None) -> None:
        while pending and len(result) < limit and (upto is None or pending[0] <= upto):
            item = heapq.heappop(pending)
            if not result or item > result[-1]:
                result.append(item)

    for wall in walls:
        utc = wall.astimezone(UTC)
        if utc > after and (until is None or utc <= until):
            heapq.heappush(pending, utc)
        back = utc.astimezone(wall.tzinfo).replace(tzinfo=None)
        if back == wall.replace(tzinfo=None):  # the wall time exists locally
            release(utc)
            if len(result) >= limit or (until is not None and utc >= until):
                break
    release(None)
    return result


def _offset(moment: datetime) -> timedelta:
    return moment.utcoffset() or timedelta(0)


def _scan_start(after: datetime, tz: tzinfo) -> datetime:
    """Return a naive local time early enough to find every run after ``after``.

    A gap time shortly before ``after`` (in wall-clock terms) may still map
    to an instant later than ``after``, so we back off by any recent forward
    jump of the UTC offset.
    """
    local = after.astimezone(tz)
    jump = _offset(local) - _offset((after - timedelta(days=2)).astimezone(tz))
    return local.replace(tzinfo=None) - max(jump, timedelta(0)) - timedelta(minutes=1)


def _cron_walls(schedule: CronSchedule, after: datetime, tz: tzinfo) -> Iterator[datetime]:
    # croniter is driven with naive datetimes so it does pure wall-clock
    # arithmetic; all DST handling happens in _collect.
    it = croniter(schedule.cron, _scan_start(after, tz), day_or=schedule.day_or)
    while True:
        try:
            wall = it.get_next(datetime)
        except (ValueError, OverflowError):  # no further match / out of range
            return
        yield wall.replace(tzinfo=tz)


def _anchor(schedule: IntervalSchedule, tz: tzinfo) -> datetime:
    anchor = schedule.anchor_date or _DEFAULT_ANCHOR
    return anchor.replace(tzinfo=tz) if anchor.utcoffset() is None else anchor.astimezone(tz)


def _daily_walls(schedule: IntervalSchedule, after: datetime, tz: tzinfo) -> Iterator[datetime]:
    anchor = _anchor(schedule, tz)
    base = anchor.replace(tzinfo=None, fold=0)
    step = timedelta(days=int(schedule.interval // _DAY_SECONDS))
    k = (_scan_start(after, tz) - base) // step - 1
    while True:
        try:
            wall = base + k * step
        except OverflowError:
            return
        # Keep the anchor itself exact, even if it is the second of two folds.
        yield anchor if k == 0 else wall.replace(tzinfo=tz)
        k += 1


def _absolute_interval(
    schedule: IntervalSchedule, after: datetime, until: datetime | None, limit: int
) -> list[datetime]:
    start = _anchor(schedule, _zone(schedule.timezone)).astimezone(UTC)
    step = timedelta(seconds=schedule.interval)
    k = (after - start) // step + 1  # exact: timedelta arithmetic is integral µs
    result: list[datetime] = []
    while len(result) < limit:
        try:
            moment = start + k * step
        except OverflowError:
            break
        if until is not None and moment > until:
            break
        result.append(moment)
        k += 1
    return result


def _rrule_walls(schedule: RRuleSchedule, after: datetime, tz: tzinfo) -> Iterator[datetime]:
    # A floating (naive) DTSTART in the string is read in the schedule's zone;
    # a DTSTART with TZID or Z keeps its own zone.
    rule = _fast_forward(_build_rrule(schedule.rrule, tz), after, tz)
    if rule is None:
        return
    for occurrence in rule:
        yield occurrence if occurrence.tzinfo is not None else occurrence.replace(tzinfo=tz)


def _fast_forward(rule: rrule | rruleset, after: datetime, tz: tzinfo) -> rrule | rruleset | None:
    """The rule with DTSTART moved close to ``after`` where that keeps its occurrences.

    dateutil always iterates from DTSTART, so a rule starting in 1970 would be
    walked through every occurrence since. For a rule repeating every N seconds,
    minutes, hours, days or weeks, moving DTSTART forward by whole periods
    (wall-clock) leaves the later occurrences unchanged. With COUNT that holds
    only when each period has exactly one occurrence (no BYxxx parts), and the
    count shrinks by the periods skipped; None when none is left.
    """
    if not isinstance(rule, rrule):
        return rule
    state = vars(rule)
    if state["_freq"] not in _RRULE_PERIODS:
        return rule
    count = state["_count"]
    if count is not None and state["_original_rule"]:
        return rule  # BYxxx parts and a COUNT: only walking can count; the budget bounds it
    start = state["_dtstart"]
    period = _RRULE_PERIODS[state["_freq"]] * state["_interval"]
    skip = (_scan_start(after, start.tzinfo or tz) - start.replace(tzinfo=None)) // period
    if skip <= 1:
        return rule
    moved = start + (skip - 1) * period
    if count is None:
        return rule.replace(dtstart=moved)
    remaining = count - (skip - 1)
    return rule.replace(dtstart=moved, count=remaining) if remaining > 0 else None
