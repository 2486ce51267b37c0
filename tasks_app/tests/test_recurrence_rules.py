"""RRULE expansion: RFC 5545 section 3.8.5.3 vectors, local wall-clock time across DST, validation."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tasks_app.recurring.rules import RecurrenceError, Schedule

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def _ny(rule, start, n=None):
    schedule = Schedule(rrule=rule, dtstart=datetime(*start, 9, 0, tzinfo=NY), timezone="America/New_York")
    instants = schedule.take(n) if n else list(schedule.iter_from())
    return [i.astimezone(NY) for i in instants]


def _dates(local):
    return [(d.year, d.month, d.day) for d in local]


def _days(year, month, days):
    return [(year, month, d) for d in days]


# (rule, dtstart date, how many to take (None: the rule ends), expected dates) - from RFC 5545 3.8.5.3,
# all with DTSTART;TZID=America/New_York at 09:00.
RFC_VECTORS = {
    "daily for 10 occurrences": ("FREQ=DAILY;COUNT=10", (1997, 9, 2), None, _days(1997, 9, range(2, 12))),
    "every other day": (
        "FREQ=DAILY;INTERVAL=2",
        (1997, 9, 2),
        20,
        _days(1997, 9, range(2, 31, 2)) + _days(1997, 10, [2, 4, 6, 8, 10]),
    ),
    "every 10 days, 5 occurrences": (
        "FREQ=DAILY;INTERVAL=10;COUNT=5",
        (1997, 9, 2),
        None,
        _days(1997, 9, [2, 12, 22]) + _days(1997, 10, [2, 12]),
    ),
    "weekly for 10 occurrences": (
        "FREQ=WEEKLY;COUNT=10",
        (1997, 9, 2),
        None,
        _days(1997, 9, [2, 9, 16, 23, 30]) + _days(1997, 10, [7, 14, 21, 28]) + _days(1997, 11, [4]),
    ),
    "weekly on Tuesday and Thursday for five weeks (UNTIL)": (
        "FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH",
        (1997, 9, 2),
        None,
        _days(1997, 9, [2, 4, 9, 11, 16, 18, 23, 25, 30]) + _days(1997, 10, [2]),
    ),
    "weekly on Tuesday and Thursday for five weeks (COUNT)": (
        "FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH",
        (1997, 9, 2),
        None,
        _days(1997, 9, [2, 4, 9, 11, 16, 18, 23, 25, 30]) + _days(1997, 10, [2]),
    ),
    "monthly on the first Friday for 10 occurrences": (
        "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
        (1997, 9, 5),
        None,
        [
            (1997, 9, 5),
            (1997, 10, 3),
            (1997, 11, 7),
            (1997, 12, 5),
            (1998, 1, 2),
            (1998, 2, 6),
            (1998, 3, 6),
            (1998, 4, 3),
            (1998, 5, 1),
            (1998, 6, 5),
        ],
    ),
    "the second-to-last weekday of the month": (
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2",
        (1997, 9, 29),
        7,
        [(1997, 9, 29), (1997, 10, 30), (1997, 11, 27), (1997, 12, 30), (1998, 1, 29), (1998, 2, 26), (1998, 3, 30)],
    ),
    "the third instance of Tu/We/Th for the next 3 months": (
        "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
        (1997, 9, 4),
        None,
        [(1997, 9, 4), (1997, 10, 7), (1997, 11, 6)],
    ),
    "monthly on the third-to-the-last day": (
        "FREQ=MONTHLY;BYMONTHDAY=-3",
        (1997, 9, 28),
        6,
        [(1997, 9, 28), (1997, 10, 29), (1997, 11, 28), (1997, 12, 29), (1998, 1, 29), (1998, 2, 26)],
    ),
    "an invalid date (February 30) is ignored": (
        "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5",
        (2007, 1, 15),
        None,
        [(2007, 1, 15), (2007, 1, 30), (2007, 2, 15), (2007, 3, 15), (2007, 3, 30)],
    ),
    "yearly in June and July for 10 occurrences": (
        "FREQ=YEARLY;COUNT=10;BYMONTH=6,7",
        (1997, 6, 10),
        None,
        [(y, m, 10) for y in range(1997, 2002) for m in (6, 7)],
    ),
}


@pytest.mark.parametrize("name", RFC_VECTORS)
def test_rfc5545_vectors_give_the_rfc_dates_at_local_nine(name):
    rule, start, n, expected = RFC_VECTORS[name]
    local = _ny(rule, start, n)
    assert _dates(local) == expected
    assert {(d.hour, d.minute) for d in local} == {(9, 0)}


def test_rfc_daily_until_crosses_dst_keeping_nine_local():
    # RFC: "Daily until December 24, 1997": Sep 2 - Oct 25 09:00 EDT, Oct 26 - Dec 23 09:00 EST.
    schedule = Schedule(
        rrule="FREQ=DAILY;UNTIL=19971224T000000Z",
        dtstart=datetime(1997, 9, 2, 9, tzinfo=NY),
        timezone="America/New_York",
    )
    instants = list(schedule.iter_from())
    assert len(instants) == 113
    assert instants[-1].astimezone(NY).date().isoformat() == "1997-12-23"
    by_day = {i.astimezone(NY).date().isoformat(): i.hour for i in instants}
    assert by_day["1997-10-25"] == 13 and by_day["1997-10-26"] == 14  # 09:00 EDT = 13Z, 09:00 EST = 14Z


def test_last_weekday_of_month_bysetpos_minus_one():
    # RFC 5545 3.3.10's "last work day of the month"; the dates are the calendar's last Mon-Fri.
    local = _ny("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", (1997, 9, 30), 5)
    assert _dates(local) == [(1997, 9, 30), (1997, 10, 31), (1997, 11, 28), (1997, 12, 31), (1998, 1, 30)]


def test_monthly_on_the_31st_skips_short_months_and_minus_one_is_the_last_day():
    assert _dates(_ny("FREQ=MONTHLY;BYMONTHDAY=31", (2026, 1, 31), 4)) == [
        (2026, 1, 31),
        (2026, 3, 31),
        (2026, 5, 31),
        (2026, 7, 31),
    ]
    assert _dates(_ny("FREQ=MONTHLY;BYMONTHDAY=-1", (2026, 1, 31), 4)) == [
        (2026, 1, 31),
        (2026, 2, 28),
        (2026, 3, 31),
        (2026, 4, 30),
    ]


def test_daily_nine_berlin_stays_nine_across_both_transitions():
    schedule = Schedule(rrule="FREQ=DAILY", dtstart=datetime(2026, 3, 28, 9, tzinfo=BERLIN), timezone="Europe/Berlin")
    spring = schedule.take(2)
    assert [i.hour for i in spring] == [8, 7]  # 09:00 CET = 08Z, 09:00 CEST = 07Z
    autumn = schedule.take(2, datetime(2026, 10, 24, 0, tzinfo=UTC))
    assert [i.hour for i in autumn] == [7, 8]
    assert {i.astimezone(BERLIN).hour for i in spring + autumn} == {9}


def test_nonexistent_local_time_shifts_forward_by_the_gap():
    schedule = Schedule(
        rrule="FREQ=DAILY;COUNT=3", dtstart=datetime(2026, 3, 28, 2, 30, tzinfo=BERLIN), timezone="Europe/Berlin"
    )
    local = [i.astimezone(BERLIN) for i in schedule.iter_from()]
    assert [(d.day, d.hour, d.minute) for d in local] == [(28, 2, 30), (29, 3, 30), (30, 2, 30)]


def test_ambiguous_local_time_is_the_first_occurrence():
    schedule = Schedule(
        rrule="FREQ=DAILY;COUNT=3", dtstart=datetime(2026, 10, 31, 1, 30, tzinfo=NY), timezone="America/New_York"
    )
    instants = list(schedule.iter_from())
    assert instants[1] == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, not 01:30 EST (06:30Z)
    assert [i.astimezone(NY).hour for i in instants] == [1, 1, 1]


def test_dtstart_at_the_second_of_two_ambiguous_times_keeps_its_offset():
    """RFC 5545: DTSTART is the first instance. 02:30+01:00 (CET, after the fall-back) is 01:30Z; reading
    the wall time back with fold=0 would fire at 02:30 CEST = 00:30Z, an hour before dtstart."""
    dtstart = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1)
    assert dtstart.utcoffset().total_seconds() == 3600
    schedule = Schedule(rrule="FREQ=DAILY;COUNT=3", dtstart=dtstart, timezone="Europe/Berlin")
    instants = list(schedule.iter_from())
    assert instants[0] == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert instants[1:] == [datetime(2026, 10, 26, 1, 30, tzinfo=UTC), datetime(2026, 10, 27, 1, 30, tzinfo=UTC)]
    assert schedule.next_after(datetime(2026, 10, 25, 0, 0, tzinfo=UTC)) == instants[0]
    assert not schedule.is_occurrence(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    # Stored as UTC (the offset is not kept by the database), the same instant comes back.
    again = Schedule(rrule="FREQ=DAILY;COUNT=1", dtstart=dtstart.astimezone(UTC), timezone="Europe/Berlin")
    assert list(again.iter_from()) == [instants[0]]


def test_hourly_rule_keeps_one_instance_when_the_gap_folds_two_together():
    schedule = Schedule(
        rrule="FREQ=HOURLY;COUNT=4", dtstart=datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN), timezone="Europe/Berlin"
    )
    instants = list(schedule.iter_from())
    assert len(instants) == len(set(instants)) == 3  # 01:00, 02:00 (-> 03:00) and 03:00 coincide


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"rrule": "FREQ=SOMETIMES"}, "rrule"),
        ({"rrule": "FREQ=DAILY;BYFOO=1"}, "rrule"),
        ({"rrule": ""}, "rrule"),
        ({"rrule": "FREQ=MINUTELY"}, "rrule"),
        ({"rrule": "DTSTART:20260101T000000\nRRULE:FREQ=DAILY"}, "rrule"),
        ({"rrule": "FREQ=DAILY;UNTIL=20250101T000000Z"}, "rrule"),
        ({"rrule": "FREQ=DAILY;UNTIL=2026XX"}, "rrule"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"until": datetime(2025, 1, 1, tzinfo=UTC)}, "until"),
        ({"count": 0}, "count"),
        ({"rrule": "FREQ=DAILY;COUNT=3", "count": 4}, "count"),
        ({"rrule": "FREQ=DAILY;UNTIL=20270101T000000Z", "until": datetime(2027, 1, 1, tzinfo=UTC)}, "until"),
        ({"dtstart": datetime(2026, 1, 1)}, "dtstart"),
    ],
)
def test_invalid_schedules_name_their_field(kwargs, field):
    args = {"rrule": "FREQ=DAILY", "dtstart": datetime(2026, 1, 1, 9, tzinfo=UTC), "timezone": "UTC", **kwargs}
    with pytest.raises(RecurrenceError) as exc:
        Schedule(**args)
    assert exc.value.field == field
