"""Tests for skyrun.schedules: models, validation and DST-correct occurrences."""

from __future__ import annotations

import itertools
import re
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from skyrun.schedules import (
    SCHEDULE_ADAPTER,
    CronSchedule,
    IntervalSchedule,
    RRuleSchedule,
    ScheduleTooCostly,
    accept_schedule,
    describe_schedule,
    next_run_times,
    parse_schedule,
)

NY = "America/New_York"
LONDON = "Europe/London"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def cron(expr: str, tz: str = "UTC", **kw: object) -> CronSchedule:
    return CronSchedule(cron=expr, timezone=tz, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------- cron / DST


@pytest.mark.parametrize(
    ("tz", "after", "expected_hours"),
    [
        (NY, utc(2026, 3, 6), [14, 14, 13, 13]),  # spring forward 2026-03-08
        (NY, utc(2026, 10, 30), [13, 13, 14, 14, 14]),  # fall back 2026-11-01
        (LONDON, utc(2026, 3, 27), [9, 9, 8, 8]),  # BST starts 2026-03-29
        (LONDON, utc(2026, 10, 23), [8, 8, 9, 9, 9]),  # BST ends 2026-10-25
    ],
)
def test_daily_cron_keeps_local_wall_clock_across_dst(
    tz: str, after: datetime, expected_hours: list[int]
) -> None:
    runs = next_run_times(cron("0 9 * * *", tz), after=after, limit=len(expected_hours))
    assert [r.hour for r in runs] == expected_hours
    assert [r.date() for r in runs] == [
        after.date() + timedelta(days=i) for i in range(len(expected_hours))
    ]
    assert all(r.tzinfo is UTC for r in runs)
    assert all(r.astimezone(ZoneInfo(tz)).hour == 9 for r in runs)


def test_spring_forward_nonexistent_time_runs_once_shifted_forward_new_york() -> None:
    # 02:30 does not exist on 2026-03-08 in New York; it runs at 03:30 EDT (07:30Z).
    runs = next_run_times(cron("30 2 * * *", NY), after=utc(2026, 3, 7), limit=3)
    assert runs == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)]
    assert runs[1].astimezone(ZoneInfo(NY)).strftime("%H:%M %Z") == "03:30 EDT"


def test_spring_forward_nonexistent_time_runs_once_shifted_forward_london() -> None:
    # 01:30 does not exist on 2026-03-29 in London; it runs at 02:30 BST (01:30Z).
    runs = next_run_times(cron("30 1 * * *", LONDON), after=utc(2026, 3, 28), limit=3)
    assert runs == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]


def test_shifted_gap_run_is_found_when_after_is_just_past_the_transition() -> None:
    # after = 03:10 EDT; the shifted 02:30 run (03:30 EDT) is still ahead.
    runs = next_run_times(cron("30 2 * * *", NY), after=utc(2026, 3, 8, 7, 10), limit=1)
    assert runs == [utc(2026, 3, 8, 7, 30)]


@pytest.mark.parametrize(
    ("tz", "after", "expected"),
    [
        (NY, utc(2026, 10, 31), [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30)]),
        (LONDON, utc(2026, 10, 24), [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30)]),
    ],
)
def test_fall_back_repeated_time_runs_once(
    tz: str, after: datetime, expected: list[datetime]
) -> None:
    until = after + timedelta(days=2)  # covers both folds of the repeated hour
    runs = next_run_times(cron("30 1 * * *", tz), after=after, until=until)
    assert runs == expected


def test_fall_back_repeated_time_not_rerun_when_after_is_in_second_fold() -> None:
    # after = 01:10 EST (second pass); 01:30 already ran at 01:30 EDT.
    runs = next_run_times(cron("30 1 * * *", NY), after=utc(2026, 11, 1, 6, 10), limit=1)
    assert runs == [utc(2026, 11, 2, 6, 30)]


@pytest.mark.parametrize("tz", [NY, LONDON])
@pytest.mark.parametrize("expr", ["0 * * * *", "*/20 * * * *", "15,45 0-4 * * *"])
@pytest.mark.parametrize("day", [(2026, 3, 8), (2026, 3, 29), (2026, 10, 25), (2026, 11, 1)])
def test_sub_daily_cron_on_transition_days_is_strictly_increasing(
    tz: str, expr: str, day: tuple[int, int, int]
) -> None:
    after = utc(*day) - timedelta(hours=6)
    runs = next_run_times(cron(expr, tz), after=after, until=after + timedelta(hours=36))
    assert runs, "expected occurrences"
    assert all(a < b for a, b in itertools.pairwise(runs))
    assert all(r > after for r in runs)


def _brute_force_cron(expr: str, tz: str, after: datetime, until: datetime) -> list[datetime]:
    """Minute-by-minute oracle for the documented DST rules."""
    from croniter import croniter

    zone = ZoneInfo(tz)
    found: set[datetime] = set()
    moment = after.replace(second=0, microsecond=0)
    while moment <= until:  # real instants: keep the first pass of each wall time
        local = moment.astimezone(zone)
        if local.fold == 0 and croniter.match(expr, local.replace(tzinfo=None)):
            found.add(moment)
        moment += timedelta(minutes=1)
    wall = after.astimezone(zone).replace(tzinfo=None) - timedelta(hours=3)
    while wall <= until.astimezone(zone).replace(tzinfo=None):  # gap wall times, shifted
        shifted = wall.replace(tzinfo=zone).astimezone(UTC)
        is_gap = shifted.astimezone(zone).replace(tzinfo=None) != wall
        if is_gap and croniter.match(expr, wall):
            found.add(shifted)
        wall += timedelta(minutes=1)
    return sorted(t for t in found if after < t <= until)


@pytest.mark.parametrize("tz", [NY, LONDON])
@pytest.mark.parametrize("expr", ["*/20 * * * *", "15,45 0-4 * * *", "30 1,2 * * *"])
@pytest.mark.parametrize("day", [(2026, 3, 8), (2026, 3, 29), (2026, 10, 25), (2026, 11, 1)])
def test_cron_matches_brute_force_oracle(tz: str, expr: str, day: tuple[int, int, int]) -> None:
    after = utc(*day) - timedelta(hours=2)
    until = after + timedelta(hours=14)
    runs = next_run_times(cron(expr, tz), after=after, until=until, limit=1000)
    assert runs == _brute_force_cron(expr, tz, after, until)


def test_hourly_cron_fall_back_has_no_duplicates() -> None:
    runs = next_run_times(cron("0 * * * *", NY), after=utc(2026, 11, 1, 3), limit=4)
    # 00:00 EDT, 01:00 EDT, (01:00 EST is the same wall time: skipped), 02:00 EST, 03:00 EST
    assert runs == [
        utc(2026, 11, 1, 4),
        utc(2026, 11, 1, 5),
        utc(2026, 11, 1, 7),
        utc(2026, 11, 1, 8),
    ]


def test_hourly_cron_spring_forward_merges_gap_hour() -> None:
    runs = next_run_times(cron("0 * * * *", NY), after=utc(2026, 3, 8, 5), limit=3)
    # 01:00 EST, then 02:00 (shifted to 03:00 EDT) coincides with 03:00 EDT: one run.
    assert runs == [utc(2026, 3, 8, 6), utc(2026, 3, 8, 7), utc(2026, 3, 8, 8)]


@pytest.mark.parametrize("tz", [NY, LONDON])
def test_chained_calls_match_a_single_call(tz: str) -> None:
    schedule = cron("*/30 * * * *", tz)
    for start in (utc(2026, 3, 7, 12), utc(2026, 10, 24, 12)):
        expected = next_run_times(schedule, after=start, limit=150)
        chained: list[datetime] = []
        cursor = start
        for _ in range(150):
            (cursor,) = next_run_times(schedule, after=cursor, limit=1)
            chained.append(cursor)
        assert chained == expected


def test_cron_day_or_flag() -> None:
    # 2026-03-13 is a Friday the 13th; 2026-03-06 and 2026-03-20 are Fridays.
    after = utc(2026, 3, 1)
    either = next_run_times(cron("0 0 13 * 5"), after=after, limit=3)
    both = next_run_times(cron("0 0 13 * 5", day_or=False), after=after, limit=1)
    assert either == [utc(2026, 3, 6), utc(2026, 3, 13), utc(2026, 3, 20)]
    assert both == [utc(2026, 3, 13)]


def test_cron_that_never_matches_returns_empty() -> None:
    assert next_run_times(cron("0 0 30 2 *"), after=utc(2026, 1, 1)) == []


# ------------------------------------------------------------------------ interval


def test_interval_with_anchor() -> None:
    schedule = IntervalSchedule(interval=3600, anchor_date=utc(2026, 1, 1, 0, 15))
    runs = next_run_times(schedule, after=utc(2026, 1, 1, 5), limit=3)
    assert runs == [utc(2026, 1, 1, 5, 15), utc(2026, 1, 1, 6, 15), utc(2026, 1, 1, 7, 15)]
    # An occurrence exactly at `after` is excluded.
    assert next_run_times(schedule, after=utc(2026, 1, 1, 5, 15), limit=1) == [
        utc(2026, 1, 1, 6, 15)
    ]


def test_interval_grid_extends_before_a_future_anchor() -> None:
    schedule = IntervalSchedule(interval=600, anchor_date=utc(2030, 1, 1, 0, 5))
    assert next_run_times(schedule, after=utc(2026, 1, 1), limit=2) == [
        utc(2026, 1, 1, 0, 5),
        utc(2026, 1, 1, 0, 15),
    ]


def test_interval_default_anchor_is_local_midnight_2020() -> None:
    schedule = IntervalSchedule(interval=7 * 3600, timezone=NY)
    # 2020-01-01 00:00 EST = 05:00Z; 7h grid -> 05:00Z + 7h*k
    runs = next_run_times(schedule, after=utc(2020, 1, 1), limit=3)
    assert runs == [utc(2020, 1, 1, 5), utc(2020, 1, 1, 12), utc(2020, 1, 1, 19)]


def test_interval_accepts_timedelta_and_stores_seconds() -> None:
    schedule = IntervalSchedule(interval=timedelta(minutes=90))  # type: ignore[arg-type]
    assert schedule.interval == 5400.0
    assert parse_schedule({"interval": timedelta(hours=1)}).interval == 3600.0  # type: ignore[union-attr]


def test_sub_daily_interval_is_absolute_across_dst() -> None:
    schedule = IntervalSchedule(interval=3600, anchor_date=datetime(2026, 11, 1), timezone=NY)
    runs = next_run_times(schedule, after=utc(2026, 11, 1, 4), limit=4)
    assert runs == [utc(2026, 11, 1, h) for h in (5, 6, 7, 8)]  # includes both 01:00s


@pytest.mark.parametrize(
    ("tz", "anchor", "after", "expected_hours"),
    [
        (NY, datetime(2026, 3, 1, 9), utc(2026, 3, 6), [14, 14, 13, 13]),
        (NY, datetime(2026, 10, 1, 9), utc(2026, 10, 30), [13, 13, 14, 14, 14]),
        (LONDON, datetime(2026, 3, 1, 9), utc(2026, 3, 27), [9, 9, 8, 8]),
    ],
)
def test_whole_day_interval_keeps_local_wall_clock_across_dst(
    tz: str, anchor: datetime, after: datetime, expected_hours: list[int]
) -> None:
    schedule = IntervalSchedule(interval=86400, anchor_date=anchor, timezone=tz)
    runs = next_run_times(schedule, after=after, limit=len(expected_hours))
    assert [r.hour for r in runs] == expected_hours
    assert all(r.astimezone(ZoneInfo(tz)).hour == 9 for r in runs)


def test_multi_day_interval_across_dst() -> None:
    schedule = IntervalSchedule(
        interval=timedelta(days=2),  # type: ignore[arg-type]
        anchor_date=datetime(2026, 3, 1, 2, 30),
        timezone=NY,
    )
    runs = next_run_times(schedule, after=utc(2026, 3, 5), limit=3)
    # 03-05 02:30 EST, 03-07 02:30 EST, 03-09 02:30 EDT
    assert runs == [utc(2026, 3, 5, 7, 30), utc(2026, 3, 7, 7, 30), utc(2026, 3, 9, 6, 30)]
    # on 03-08 the 02:30 anchor wall time is shifted forward like cron
    odd = IntervalSchedule(interval=172800, anchor_date=datetime(2026, 3, 2, 2, 30), timezone=NY)
    assert next_run_times(odd, after=utc(2026, 3, 7), limit=1) == [utc(2026, 3, 8, 7, 30)]


# --------------------------------------------------------------------------- rrule


def test_rrule_keeps_wall_clock_across_dst() -> None:
    schedule = RRuleSchedule(rrule="FREQ=DAILY;BYHOUR=9;BYMINUTE=0", timezone=NY)
    runs = next_run_times(schedule, after=utc(2026, 3, 7), limit=3)
    assert runs == [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)]


def test_rrule_with_floating_dtstart_uses_schedule_timezone() -> None:
    text = "DTSTART:20260320T083000\nRRULE:FREQ=WEEKLY;BYDAY=MO,FR;COUNT=4"
    runs = next_run_times(RRuleSchedule(rrule=text, timezone=LONDON), after=utc(2026, 1, 1))
    # Fri 03-20 (GMT), Mon 03-23 (GMT), Fri 03-27 (GMT), Mon 03-30 (BST); COUNT ends it.
    assert runs == [
        utc(2026, 3, 20, 8, 30),
        utc(2026, 3, 23, 8, 30),
        utc(2026, 3, 27, 8, 30),
        utc(2026, 3, 30, 7, 30),
    ]


def test_rrule_with_tzid_dtstart_uses_that_zone() -> None:
    text = "DTSTART;TZID=America/New_York:20261030T093000\nRRULE:FREQ=DAILY"
    runs = next_run_times(RRuleSchedule(rrule=text), after=utc(2026, 10, 31), limit=3)
    assert runs == [utc(2026, 10, 31, 13, 30), utc(2026, 11, 1, 14, 30), utc(2026, 11, 2, 14, 30)]


@pytest.mark.parametrize(
    "text",
    [
        "DTSTART:20251231T231703\nRRULE:FREQ=MINUTELY;INTERVAL=97",
        "FREQ=HOURLY;INTERVAL=5;BYMINUTE=10,40",
        "FREQ=DAILY;INTERVAL=3;BYHOUR=1,2,3;BYSETPOS=-1",
        "FREQ=WEEKLY;INTERVAL=3;BYDAY=TU,SA;BYHOUR=2;BYMINUTE=30",
        "DTSTART:20210317T021500\nRRULE:FREQ=WEEKLY;INTERVAL=2",
        "DTSTART:20260201T000003\nRRULE:FREQ=SECONDLY;INTERVAL=7919",
    ],
)
@pytest.mark.parametrize("tz", ["UTC", NY, LONDON])
def test_rrule_skipping_ahead_matches_full_iteration(text: str, tz: str) -> None:
    # COUNT disables the DTSTART fast-forward, so both must agree exactly.
    with_count = text + ";COUNT=100000000"
    for after in (utc(2026, 3, 7, 22), utc(2026, 10, 24, 20, 59, 59), utc(2026, 11, 1, 5)):
        fast = next_run_times(RRuleSchedule(rrule=text, timezone=tz), after=after, limit=40)
        slow = next_run_times(RRuleSchedule(rrule=with_count, timezone=tz), after=after, limit=40)
        assert fast == slow
        assert len(fast) == 40


def test_rrule_matches_dateutil_in_utc() -> None:
    from dateutil.rrule import rrulestr

    text = "FREQ=HOURLY;INTERVAL=5;BYMINUTE=10,40"
    after = utc(2026, 6, 1, 3, 10)
    oracle = rrulestr(text, dtstart=datetime(2020, 1, 1, tzinfo=UTC))
    expected = list(oracle.xafter(after, count=30))
    assert next_run_times(RRuleSchedule(rrule=text), after=after, limit=30) == expected


def test_rrule_fall_back_hourly_has_no_duplicates() -> None:
    schedule = RRuleSchedule(rrule="FREQ=HOURLY", timezone=NY)
    runs = next_run_times(schedule, after=utc(2026, 11, 1, 3), until=utc(2026, 11, 1, 8))
    assert runs == [utc(2026, 11, 1, h) for h in (4, 5, 7, 8)]


# --------------------------------------------------------------------- limit/until


def test_limit_and_until() -> None:
    schedule = cron("0 * * * *")
    after = utc(2026, 5, 1)
    assert len(next_run_times(schedule, after=after)) == 100
    assert len(next_run_times(schedule, after=after, limit=7)) == 7
    assert next_run_times(schedule, after=after, limit=0) == []
    # until is inclusive
    assert next_run_times(schedule, after=after, until=utc(2026, 5, 1, 3)) == [
        utc(2026, 5, 1, h) for h in (1, 2, 3)
    ]
    assert next_run_times(schedule, after=after, until=after) == []
    assert next_run_times(schedule, after=after, until=utc(2026, 5, 1, 2), limit=1) == [
        utc(2026, 5, 1, 1)
    ]


@pytest.mark.parametrize(
    "schedule",
    [
        CronSchedule(cron="*/5 * * * *", timezone=NY),
        IntervalSchedule(interval=300),
        IntervalSchedule(interval=86400, timezone=LONDON),
        RRuleSchedule(rrule="FREQ=MINUTELY;INTERVAL=5", timezone=NY),
    ],
)
def test_until_and_limit_apply_to_every_kind(schedule: object) -> None:
    after = utc(2026, 5, 1, 0, 1)
    until = after + timedelta(days=3)
    runs = next_run_times(schedule, after=after, until=until, limit=50)  # type: ignore[arg-type]
    assert 0 < len(runs) <= 50
    assert all(after < r <= until and r.tzinfo is UTC for r in runs)
    assert runs == sorted(set(runs))


def test_after_in_other_timezone_is_respected() -> None:
    after = datetime(2026, 5, 1, 9, 0, tzinfo=ZoneInfo(NY))  # 13:00Z
    assert next_run_times(cron("0 13 * * *"), after=after, limit=1) == [utc(2026, 5, 2, 13)]


def test_naive_after_or_until_rejected() -> None:
    with pytest.raises(ValueError, match="after must be a timezone-aware datetime"):
        next_run_times(cron("* * * * *"), after=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="until must be a timezone-aware datetime"):
        next_run_times(cron("* * * * *"), after=utc(2026, 1, 1), until=datetime(2026, 1, 2))


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize("expr", ["61 * * * *", "not a cron", "", "* * * *"])
def test_invalid_cron_error_names_expression(expr: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(f"invalid cron expression {expr!r}")):
        CronSchedule(cron=expr)


@pytest.mark.parametrize("model", ["cron", "interval", "rrule"])
@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "America", "", "../etc"])
def test_unknown_timezone_error_names_zone(model: str, zone: str) -> None:
    data = {"cron": "* * * * *", "interval": 60, "rrule": "FREQ=DAILY"}
    with pytest.raises(ValidationError, match=re.escape(f"unknown time zone {zone!r}")):
        parse_schedule({model: data[model], "timezone": zone})


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "FREQ=DAILY;FOO=1",
        "FREQ=SOMETIMES",
        "",
        "FREQ=DAILY;UNTIL=20260101T000000",  # floating UNTIL with zoned DTSTART
        "DTSTART;TZID=Mars/Base:20260101T000000\nRRULE:FREQ=DAILY",
    ],
)
def test_invalid_rrule_error(text: str) -> None:
    with pytest.raises(ValidationError, match="invalid rrule string"):
        RRuleSchedule(rrule=text)


@pytest.mark.parametrize("value", [0, -5, -0.5, timedelta(0), timedelta(seconds=-1)])
def test_non_positive_interval_error(value: object) -> None:
    with pytest.raises(ValidationError, match="interval must be a finite number of seconds > 0"):
        IntervalSchedule(interval=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("inf"), "interval must be a finite number of seconds > 0"),
        (float("nan"), "interval must be a finite number of seconds > 0"),
        (1e-9, "shorter than one microsecond"),
        (1e300, "too large"),
    ],
)
def test_degenerate_interval_error(value: float, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        IntervalSchedule(interval=value)


def test_extra_fields_forbidden() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        CronSchedule(cron="* * * * *", tz="UTC")  # type: ignore[call-arg]


# ------------------------------------------------------------------- parse/describe


def test_parse_schedule_with_and_without_kind() -> None:
    assert isinstance(parse_schedule({"kind": "cron", "cron": "0 9 * * *"}), CronSchedule)
    assert isinstance(parse_schedule({"cron": "0 9 * * *", "timezone": NY}), CronSchedule)
    assert isinstance(parse_schedule({"interval": 60}), IntervalSchedule)
    assert isinstance(parse_schedule({"rrule": "FREQ=DAILY"}), RRuleSchedule)
    original = {"interval": 60}
    parse_schedule(original)
    assert original == {"interval": 60}  # input not mutated


def test_parse_schedule_round_trips_model_dump() -> None:
    for schedule in (
        CronSchedule(cron="0 9 * * 1-5", timezone=NY, day_or=False),
        IntervalSchedule(interval=90, anchor_date=utc(2026, 1, 1)),
        RRuleSchedule(rrule="FREQ=WEEKLY;BYDAY=MO", timezone=LONDON),
    ):
        assert parse_schedule(schedule.model_dump()) == schedule
        assert SCHEDULE_ADAPTER.validate_json(schedule.model_dump_json()) == schedule


def test_parse_schedule_errors() -> None:
    with pytest.raises(ValueError, match=r"cannot infer schedule kind.*found: none"):
        parse_schedule({"timezone": "UTC"})
    with pytest.raises(ValueError, match=r"cannot infer schedule kind.*found: cron, interval"):
        parse_schedule({"cron": "* * * * *", "interval": 5})
    with pytest.raises(ValidationError):
        parse_schedule({"kind": "weekly", "cron": "* * * * *"})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        parse_schedule({"kind": "cron", "cron": "* * * * *", "interval": 5})


def test_describe_schedule() -> None:
    assert describe_schedule(cron("0 9 * * *", NY)) == "cron '0 9 * * *' (America/New_York)"
    assert describe_schedule(cron("0 9 * * *")) == "cron '0 9 * * *' (UTC)"
    assert describe_schedule(IntervalSchedule(interval=3600)) == "every 3600s"
    assert describe_schedule(IntervalSchedule(interval=1.5)) == "every 1.5s"
    assert (
        describe_schedule(IntervalSchedule(interval=86400, timezone=LONDON))
        == "every 86400s (Europe/London)"
    )
    assert describe_schedule(RRuleSchedule(rrule="FREQ=DAILY")) == "rrule 'FREQ=DAILY'"
    text = "DTSTART:20260101T090000\nRRULE:FREQ=DAILY"
    assert (
        describe_schedule(RRuleSchedule(rrule=text, timezone=NY))
        == "rrule 'DTSTART:20260101T090000 RRULE:FREQ=DAILY' (America/New_York)"
    )


def test_whole_day_interval_anchor_in_second_fold_is_itself_an_occurrence() -> None:
    anchor = utc(2026, 11, 1, 6, 30)  # 01:30 EST, the second 01:30 of the day
    schedule = IntervalSchedule(interval=86400, anchor_date=anchor, timezone=NY)
    runs = next_run_times(schedule, after=utc(2026, 11, 1, 6), limit=2)
    assert runs == [anchor, utc(2026, 11, 2, 6, 30)]


# ------------------------------------------------------------- bounded computation


def test_a_count_rule_from_1970_is_computed_from_now_not_walked_from_dtstart() -> None:
    # The review's rule: a walk from DTSTART would take hours (and froze the server).
    text = "DTSTART:19700101T000000Z\nRRULE:FREQ=SECONDLY;COUNT=2000000000"
    schedule = accept_schedule({"rrule": text})
    after = utc(2026, 6, 1, 12)
    assert next_run_times(schedule, after=after, limit=3) == [
        after + timedelta(seconds=s) for s in (1, 2, 3)
    ]
    # Its COUNT still ends it: the two-billionth second of 1970's epoch is in 2033.
    last = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=2_000_000_000 - 1)
    assert next_run_times(schedule, after=last - timedelta(seconds=2)) == [
        last - timedelta(seconds=1),
        last,
    ]


@pytest.mark.parametrize("tz", ["UTC", NY])
def test_a_count_rule_fast_forwarded_keeps_its_count(tz: str) -> None:
    from dateutil.rrule import rrulestr

    text = "DTSTART:20250101T093000\nRRULE:FREQ=DAILY;INTERVAL=2;COUNT=300"
    oracle = list(
        rrulestr(text, tzinfos=None).replace(
            dtstart=datetime(2025, 1, 1, 9, 30, tzinfo=ZoneInfo(tz))
        )
    )
    for after in (utc(2025, 6, 1), utc(2026, 8, 20, 13, 30), utc(2027, 1, 1)):
        expected = [o.astimezone(UTC) for o in oracle if o.astimezone(UTC) > after][:50]
        schedule = RRuleSchedule(rrule=text, timezone=tz)
        assert next_run_times(schedule, after=after, limit=50) == expected


@pytest.mark.parametrize(
    "text",
    ["FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31"],
)
def test_a_rule_that_matches_no_date_is_refused_not_searched_to_year_9999(text: str) -> None:
    with pytest.raises(ScheduleTooCostly, match="too costly to compute"):
        accept_schedule({"rrule": text})
    # One saved before this check still parses; computing it stops at the budget.
    schedule = parse_schedule({"rrule": text})
    with pytest.raises(ScheduleTooCostly):
        next_run_times(schedule, after=utc(2026, 1, 1))


def test_a_rare_but_real_rule_is_accepted() -> None:
    schedule = accept_schedule({"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29"})
    assert next_run_times(schedule, after=utc(2026, 1, 1), limit=2) == [
        utc(2028, 2, 29),
        utc(2032, 2, 29),
    ]


def test_the_budget_leaves_a_trace_function_in_place() -> None:
    def tracer(*_args: object) -> None:
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        next_run_times(cron("0 9 * * *"), after=utc(2026, 1, 1))
        with pytest.raises(ScheduleTooCostly):
            next_run_times(
                RRuleSchedule(rrule="FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"), after=utc(2026, 1, 1)
            )
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(previous)
