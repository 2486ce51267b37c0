"""Resumed expansion (from a period-aligned anchor near the start) equals full expansion from dtstart.

A hypothesis property over random rules, zones and start points around DST transitions, plus the
anchors and fallbacks of a few rules spelled out.
"""

import calendar
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st

from tasks_app.recurring.rules import RecurrenceError, Resume, Schedule

ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def _transitions(name, first=2023, last=2027):
    """UTC instants (to the minute) where the zone's offset changes."""
    zone = ZoneInfo(name)
    found = []
    step = timedelta(hours=6)
    at = datetime(first, 1, 1, tzinfo=UTC)
    while at.year <= last:
        nxt = at + step
        if at.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            low, high = at, nxt
            while high - low > timedelta(minutes=1):
                mid = low + (high - low) / 2
                if mid.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = mid
                else:
                    high = mid
            found.append(high.replace(second=0, microsecond=0))
        at = nxt
    return found


TRANSITIONS = {name: _transitions(name) for name in ZONES}
assert all(len(TRANSITIONS[name]) >= 8 for name in ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe"))


@st.composite
def rules(draw):
    freq = draw(st.sampled_from(("DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY")))
    parts = [f"FREQ={freq}"]
    interval = draw(st.integers(1, 5))
    if interval > 1 or draw(st.booleans()):
        parts.append(f"INTERVAL={interval}")
    if draw(st.integers(0, 3)) == 0:
        return ";".join(parts)  # plain: one occurrence per period unless dtstart's day is missing in some
    date_part = draw(st.sampled_from(("none", "byday", "bymonthday")))
    if date_part == "byday":
        days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=3, unique=True))
        if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
            days = [f"{draw(st.sampled_from((1, 2, -1)))}{day}" for day in days]
        parts.append("BYDAY=" + ",".join(days))
    elif date_part == "bymonthday":
        monthdays = draw(st.lists(st.sampled_from((1, 13, 15, 28, 29, 30, 31, -1, -2)), min_size=1, max_size=2))
        parts.append("BYMONTHDAY=" + ",".join(map(str, sorted(set(monthdays)))))
    if freq == "YEARLY" and (date_part != "bymonthday" or max(map(int, parts[-1][11:].split(","))) <= 28):
        if draw(st.booleans()):
            months = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True))
            parts.append("BYMONTH=" + ",".join(map(str, months)))
    if draw(st.booleans()):
        hours = draw(st.lists(st.sampled_from((0, 1, 2, 3, 9, 14, 23)), min_size=1, max_size=3, unique=True))
        parts.append("BYHOUR=" + ",".join(map(str, hours)))
    if draw(st.booleans()):
        parts.append("BYMINUTE=" + draw(st.sampled_from(("0", "30", "0,30", "15,45"))))
    if draw(st.integers(0, 3)) == 0:
        parts.append(f"BYSETPOS={draw(st.sampled_from((1, -1)))}")
    if draw(st.integers(0, 3)) == 0:
        parts.append(f"WKST={draw(st.sampled_from(('SU', 'WE', 'MO')))}")
    draw(st.randoms(use_true_random=False)).shuffle(parts)
    return ";".join(parts)


@st.composite
def plain_rules(draw):
    """Rules of FREQ, INTERVAL and WKST only: the ones Schedule steps through without dateutil (unless dtstart's
    day is missing in some months or years)."""
    freq = draw(st.sampled_from(("DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY")))
    parts = [f"FREQ={freq}"]
    interval = draw(st.integers(1, 5))
    if interval > 1 or draw(st.booleans()):
        parts.append(f"INTERVAL={interval}")
    if draw(st.integers(0, 3)) == 0:
        parts.append(f"WKST={draw(st.sampled_from(('SU', 'WE', 'MO')))}")
    draw(st.randoms(use_true_random=False)).shuffle(parts)
    return ";".join(parts)


@st.composite
def cases(draw, rule_strategy=None):
    name = draw(st.sampled_from(ZONES))
    zone = ZoneInfo(name)
    transitions = TRANSITIONS[name]
    if transitions:
        pivot = draw(st.sampled_from(transitions[2:]))
    else:
        pivot = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=draw(st.integers(0, 900)))
    start = pivot + timedelta(minutes=draw(st.integers(-3 * 24 * 60, 3 * 24 * 60)))
    rule = draw(rule_strategy if rule_strategy is not None else rules())
    hourly = "FREQ=HOURLY" in rule
    if transitions and draw(st.integers(0, 2)) == 0:
        # dtstart on a transition night's wall time (gap or ambiguous), either fold.
        earlier = [t for t in transitions if t < start - timedelta(days=1)]
        if hourly:
            earlier = [t for t in earlier if start - t < timedelta(days=200)]
        assume(earlier)
        local = draw(st.sampled_from(earlier)).astimezone(zone).replace(tzinfo=None)
        local += timedelta(minutes=draw(st.sampled_from((-30, 0, 15, 30, 45))))
        dtstart = local.replace(tzinfo=zone, fold=draw(st.integers(0, 1)))
    else:
        # Uniform over the range (hypothesis' own integers favour the small end), some within dtstart's period.
        rnd = random.Random(draw(st.integers(0, 2**32)))
        oldest = 150 * 24 if hourly else 3 * 365 * 24
        age = timedelta(hours=rnd.randint(0, 72) if rnd.random() < 0.15 else rnd.randint(72, oldest))
        minute = draw(st.sampled_from((0, 7, 30, 45)))
        dtstart = (start - age).astimezone(zone).replace(minute=minute, second=draw(st.sampled_from((0, 0, 30))))
        if rnd.random() < 0.2:  # on a day some months (or years) do not have
            day = rnd.choice(
                [d for d in (29, 30, 31) if d <= calendar.monthrange(dtstart.year, dtstart.month)[1]] or [28]
            )
            dtstart = dtstart.replace(day=day)
    end = draw(st.sampled_from(("none", "none", "count", "until", "until-field")))
    kwargs = {}
    if end == "count":
        kwargs["count"] = draw(st.sampled_from((1, 3, 40, 400, 4000)))
    elif end.startswith("until"):
        until = start + timedelta(hours=draw(st.integers(-24 * 20, 24 * 60)))
        if end == "until":
            rule += ";UNTIL=" + until.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        else:
            kwargs["until"] = until
    try:
        schedule = Schedule(rrule=rule, dtstart=dtstart, timezone=name, **kwargs)
    except RecurrenceError:
        assume(False)  # e.g. HOURLY;INTERVAL=2 with no BYHOUR reachable from dtstart, UNTIL before dtstart
    note(f"rrule={rule!r} dtstart={dtstart.isoformat()} fold={dtstart.fold} zone={name} {kwargs} start={start}")
    return schedule, start


def _take(iterator, n):
    return [value for _, value in zip(range(n), iterator, strict=False)]


@settings(
    max_examples=1000,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(cases())
def test_resumed_expansion_equals_full_expansion(case):
    schedule, start = case
    point = schedule.resume_point(schedule.local(start).replace(tzinfo=None) - timedelta(days=2))
    event("from dtstart" if point is None else "exhausted" if point.count == 0 else f"resumed {schedule.freq}")
    full = _take(schedule.iter_from(start, resume=False), 25)
    assert _take(schedule.iter_from(start), 25) == full
    assert _take(schedule.iter_from(start, inclusive=False), 5) == _take(
        schedule.iter_from(start, inclusive=False, resume=False), 5
    )
    assert schedule.next_after(start) == next(schedule.iter_from(start, inclusive=False, resume=False), None)
    assert schedule.is_occurrence(start) == (bool(full) and full[0] == start)
    for occurrence in full[:3]:
        assert schedule.is_occurrence(occurrence)
        assert schedule.take(3, occurrence) == _take(schedule.iter_from(occurrence, resume=False), 3)
        assert not schedule.is_occurrence(occurrence + timedelta(seconds=1))


BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET, half an hour before Berlin springs forward


def _old(rule, *, years=3, **kwargs):
    return Schedule(rrule=rule, dtstart=NOW - timedelta(days=365 * years), timezone="Europe/Berlin", **kwargs)


def _target():
    return NOW.astimezone(BERLIN).replace(tzinfo=None) - timedelta(days=2)


def test_an_old_hourly_rule_starts_within_an_interval_of_the_target():
    schedule = _old("FREQ=HOURLY;INTERVAL=5")
    point = schedule.resume_point(_target())
    assert point.count is None
    assert _target() - timedelta(hours=5) < point.anchor <= _target()
    assert (point.anchor - schedule.rule_start.replace(minute=0)) % timedelta(hours=5) == timedelta(0)
    assert schedule.take(3, NOW) == _take(schedule.iter_from(NOW, resume=False), 3)


def test_weekly_interval_two_keeps_dtstart_weeks():
    # dtstart Wednesday 2023-03-29; WKST=SU makes the weeks start on Sunday.
    schedule = Schedule(
        rrule="FREQ=WEEKLY;INTERVAL=2;WKST=SU;BYDAY=MO,FR;BYSETPOS=-1",
        dtstart=datetime(2023, 3, 29, 9, tzinfo=BERLIN),
        timezone="Europe/Berlin",
    )
    point = schedule.resume_point(_target())
    assert point.anchor.weekday() == 6  # a Sunday
    assert (point.anchor.date() - datetime(2023, 3, 26).date()).days % 14 == 0
    assert schedule.take(4, NOW) == _take(schedule.iter_from(NOW, resume=False), 4)
    assert all(i.astimezone(BERLIN).weekday() == 4 for i in schedule.take(4, NOW))


@pytest.mark.parametrize(
    ("rule", "kwargs"),
    [("FREQ=HOURLY", {"count": 100_000}), ("FREQ=DAILY;COUNT=2000", {}), ("FREQ=WEEKLY;INTERVAL=3;COUNT=70", {})],
)
def test_count_of_one_occurrence_per_period_is_reduced_by_the_skipped_occurrences(rule, kwargs):
    schedule = _old(rule, **kwargs)
    point = schedule.resume_point(_target())
    before = schedule.rule.between(schedule.rule_start - timedelta(seconds=1), point.anchor)
    assert len(before) > 50
    assert point.count == schedule.count - len(before)
    assert schedule.take(5, NOW) == _take(schedule.iter_from(NOW, resume=False), 5)
    assert len(schedule.take(5, NOW)) == 5


def test_count_exhausted_before_the_anchor():
    schedule = _old("FREQ=HOURLY;COUNT=10")
    assert schedule.resume_point(_target()) == Resume(schedule.resume_point(_target()).anchor, 0)
    assert schedule.take(1, NOW) == []
    assert schedule.next_after(schedule.start_instant) == schedule.start_instant + timedelta(hours=1)


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=HOURLY;COUNT=50000;BYMINUTE=0,30",  # COUNT with a BYxxx part: occurrences per period vary
        "FREQ=MONTHLY;COUNT=500",  # dtstart's day may be > 28 (some months have none): see below
        "FREQ=YEARLY;BYEASTER=0",  # a dateutil extension we do not resume
        "FREQ=WEEKLY;BYWEEKDAY=MO",  # dateutil's alias of BYDAY
    ],
)
def test_rules_expanded_from_dtstart(rule):
    dtstart = datetime(2023, 1, 31, 9, tzinfo=BERLIN)
    schedule = Schedule(rrule=rule, dtstart=dtstart, timezone="Europe/Berlin")
    assert schedule.resume_point(_target()) is None
    assert schedule.take(3, NOW) == _take(schedule.iter_from(NOW, resume=False), 3)


@pytest.mark.parametrize(
    ("rule", "dtstart"),
    [
        ("FREQ=MONTHLY;COUNT=30", datetime(2023, 1, 31, 9)),
        ("FREQ=MONTHLY;INTERVAL=2;COUNT=30", datetime(2023, 3, 30, 9)),
        ("FREQ=YEARLY;COUNT=5", datetime(2016, 2, 29, 9)),
    ],
)
def test_count_on_a_day_some_periods_lack_is_expanded_from_dtstart(rule, dtstart):
    schedule = Schedule(rrule=rule, dtstart=dtstart.replace(tzinfo=BERLIN), timezone="Europe/Berlin")
    assert schedule.resume_point(_target()) is None
    assert schedule.take(5, NOW) == _take(schedule.iter_from(NOW, resume=False), 5)


def test_target_in_dtstarts_own_period_expands_from_dtstart():
    schedule = Schedule(rrule="FREQ=YEARLY", dtstart=datetime(2026, 1, 5, 9, tzinfo=BERLIN), timezone="Europe/Berlin")
    assert schedule.resume_point(_target()) is None
    assert isinstance(_old("FREQ=YEARLY").resume_point(_target()), Resume)


@settings(
    max_examples=1000,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(cases(plain_rules()))
def test_stepped_expansion_equals_full_expansion(case):
    """A plain rule's occurrences are computed (dtstart + k INTERVALs) where dateutil would expand them."""
    schedule, start = case
    day = schedule.rule_start.day
    missing_day = (schedule.freq == "MONTHLY" and day > 28) or (
        schedule.freq == "YEARLY" and (schedule.rule_start.month, day) == (2, 29)
    )
    assert schedule.steps == (not missing_day)
    event("stepped" if schedule.steps else "dateutil")
    full = _take(schedule.iter_from(start, resume=False), 25)
    assert _take(schedule.iter_from(start), 25) == full
    assert _take(schedule.iter_from(start, inclusive=False), 5) == _take(
        schedule.iter_from(start, inclusive=False, resume=False), 5
    )
    assert schedule.is_occurrence(start) == (bool(full) and full[0] == start)
    for occurrence in full[:3]:
        assert schedule.is_occurrence(occurrence)
        assert schedule.take(3, occurrence) == _take(schedule.iter_from(occurrence, resume=False), 3)


@pytest.mark.parametrize(
    ("rule", "dtstart", "start", "expected"),
    [
        # COUNT and UNTIL end a stepped series where dateutil ends it.
        ("FREQ=DAILY;COUNT=3", datetime(2026, 5, 1, 9), datetime(2026, 5, 2, 9), 2),
        ("FREQ=WEEKLY;INTERVAL=2;UNTIL=20260612T070000Z", datetime(2026, 5, 1, 9), datetime(2026, 5, 1, 9), 4),
        ("FREQ=HOURLY;COUNT=10", datetime(2026, 3, 29, 0, 30), datetime(2026, 3, 29, 4), 6),
        # The end of year 9999.
        ("FREQ=YEARLY;INTERVAL=3", datetime(9990, 6, 1, 9), datetime(9995, 1, 1), 2),
        ("FREQ=MONTHLY", datetime(9999, 10, 15, 9), datetime(9999, 11, 1), 2),
    ],
)
def test_stepped_series_end_where_dateutil_ends_them(rule, dtstart, start, expected):
    schedule = Schedule(rrule=rule, dtstart=dtstart.replace(tzinfo=BERLIN), timezone="Europe/Berlin")
    assert schedule.steps
    at = start.replace(tzinfo=BERLIN)
    assert schedule.take(50, at) == _take(schedule.iter_from(at, resume=False), 50)
    assert len(schedule.take(50, at)) == expected


def test_plain_rules_are_parsed_once_per_text_and_keep_their_own_parts():
    first = Schedule(rrule="FREQ=DAILY;INTERVAL=2", dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN), timezone="UTC")
    second = Schedule(rrule="FREQ=DAILY;INTERVAL=2", dtstart=datetime(2026, 5, 3, 7, tzinfo=BERLIN), timezone="UTC")
    first.parts["INTERVAL"] = "9"
    assert second.parts == {"FREQ": "DAILY", "INTERVAL": "2"}
    assert second.rule.after(datetime(2026, 5, 3, 5)) == datetime(2026, 5, 5, 5)  # built from its own dtstart
    with pytest.raises(RecurrenceError):
        Schedule(rrule="FREQ=DAILY;INTERVAL=x", dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN), timezone="UTC")
