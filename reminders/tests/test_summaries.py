"""Daily summary and weekly report: local mornings across DST with hourly ticks, contents, a crafted week."""

import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from notifications.models import Notification
from notifications.sending import email_message
from reminders import summaries
from reminders import tasks as reminder_tasks
from reminders.models import SummaryDelivery
from tasks_app.models import Profile, Status
from tasks_app.tests.factories import MembershipFactory, TaskFactory, UserFactory

BERLIN = ZoneInfo("Europe/Berlin")
LA = ZoneInfo("America/Los_Angeles")
KOLKATA = ZoneInfo("Asia/Kolkata")


def user_in(cast, username, zone, morning_hour=8):
    user = UserFactory(username=username)
    MembershipFactory(project=cast.project, user=user)
    Profile.objects.filter(user=user).update(timezone=zone.key, morning_hour=morning_hour)
    return user


def at(zone, *args):
    return datetime(*args, tzinfo=zone)


def hourly_ticks(start_utc, days, minute=17):
    tick = start_utc.replace(minute=minute)
    for _ in range(days * 24):
        yield tick
        tick += timedelta(hours=1)


def local_sends(user, kind, zone):
    """[(local date, local hour)] of the user's notifications of `kind`."""
    return [
        (n.created_at.astimezone(zone).date(), n.created_at.astimezone(zone).hour)
        for n in Notification.objects.filter(recipient=user, kind=kind).order_by("created_at")
    ]


# Each window holds one daylight-saving transition (2026: US Mar 8 / Nov 1, EU Mar 29 / Oct 25).
WINDOWS = [
    datetime(2026, 3, 6, tzinfo=UTC),
    datetime(2026, 3, 27, tzinfo=UTC),
    datetime(2026, 10, 23, tzinfo=UTC),
    datetime(2026, 10, 30, tzinfo=UTC),
]


@pytest.mark.parametrize("start", WINDOWS, ids=["us-spring", "eu-spring", "eu-autumn", "us-autumn"])
def test_one_summary_per_local_day_at_the_users_hour_across_dst(cast, start):
    users = {zone: user_in(cast, f"u-{zone.key.split('/')[-1].lower()}", zone) for zone in (LA, KOLKATA, BERLIN)}
    for user in users.values():  # something to say every day
        TaskFactory(project=cast.project, assignee=user, due_at=start - timedelta(days=30))
    days = 5
    for tick in hourly_ticks(start, days):
        with time_machine.travel(tick, tick=False):
            reminder_tasks.send_daily_task_summary()
            reminder_tasks.send_weekly_productivity_report()
    end = start + timedelta(days=days)
    for zone, user in users.items():
        sends = local_sends(user, "daily_summary", zone)
        expected_days = sorted(
            {t.astimezone(zone).date() for t in hourly_ticks(start, days) if t.astimezone(zone).hour == 8}
        )
        assert [d for d, _ in sends] == expected_days, zone
        assert {h for _, h in sends} == {8}, zone
        assert SummaryDelivery.objects.filter(user=user, kind="daily_summary").count() == len(expected_days)
        mondays = [d for d in expected_days if d.weekday() == 0]
        weekly = local_sends(user, "weekly_report", zone)
        assert weekly == [(d, 8) for d in mondays], zone
        assert all(start <= n.created_at < end for n in Notification.objects.filter(recipient=user))


def test_a_morning_hour_skipped_by_spring_forward_is_caught_up_once(cast):
    user = user_in(cast, "early-bird", LA, morning_hour=2)  # 02:00 does not exist in LA on 2026-03-08
    TaskFactory(project=cast.project, assignee=user, due_at=datetime(2026, 3, 1, tzinfo=UTC))
    for tick in hourly_ticks(datetime(2026, 3, 7, 20, tzinfo=UTC), 2):  # from 12:17 on Mar 7 in LA
        with time_machine.travel(tick, tick=False):
            summaries.daily_summaries_send()
    sends = local_sends(user, "daily_summary", LA)
    assert sends == [(datetime(2026, 3, 8).date(), 3), (datetime(2026, 3, 9).date(), 2)]


def test_beat_outage_at_the_morning_hour_sends_late_within_the_catch_up_window(cast, settings):
    settings.SUMMARY_CATCH_UP_HOURS = 3
    user = user_in(cast, "sleeper", BERLIN)
    TaskFactory(project=cast.project, assignee=user, due_at=datetime(2026, 5, 1, tzinfo=UTC))
    with time_machine.travel(at(BERLIN, 2026, 5, 5, 10, 40), tick=False):  # beat was down 07:00-10:40
        assert summaries.daily_summaries_send()["sent"] >= 1
    with time_machine.travel(at(BERLIN, 2026, 5, 6, 12, 40), tick=False):  # hour 12: past 8 + 3, too late
        summaries.daily_summaries_send()
    assert local_sends(user, "daily_summary", BERLIN) == [(datetime(2026, 5, 5).date(), 10)]


def test_daily_summary_lists_due_today_overdue_and_completed_yesterday(cast):
    user = user_in(cast, "berliner", BERLIN)
    other = user_in(cast, "someone-else", BERLIN)

    def task(title, **fields):
        return TaskFactory(project=cast.project, title=title, assignee=fields.pop("assignee", user), **fields)

    task("due this evening", due_at=at(BERLIN, 2026, 5, 5, 17, 0))
    task("due just after midnight", due_at=at(BERLIN, 2026, 5, 6, 0, 30))
    task("due yesterday", due_at=at(BERLIN, 2026, 5, 4, 12, 0))
    task("due at seven today", due_at=at(BERLIN, 2026, 5, 5, 7, 0), status=Status.IN_PROGRESS)
    task("done late yesterday", status=Status.DONE, completed_at=at(BERLIN, 2026, 5, 4, 23, 30))
    task("done after midnight", status=Status.DONE, completed_at=at(BERLIN, 2026, 5, 5, 0, 10))
    task("done two days ago", status=Status.DONE, completed_at=at(BERLIN, 2026, 5, 3, 12, 0))
    task("cancelled, due today", status=Status.CANCELLED, due_at=at(BERLIN, 2026, 5, 5, 12, 0))
    task("someone else's", assignee=other, due_at=at(BERLIN, 2026, 5, 5, 12, 0))
    with time_machine.travel(at(BERLIN, 2026, 5, 5, 8, 10), tick=False):
        summaries.daily_summaries_send()
    notification = Notification.objects.get(recipient=user, kind="daily_summary")
    data = notification.data
    titles = {
        section: [t["title"] for t in data[section]] for section in ("due_today", "overdue", "completed_yesterday")
    }
    assert titles == {
        "due_today": ["due this evening"],
        "overdue": ["due yesterday", "due at seven today"],
        "completed_yesterday": ["done late yesterday"],
    }
    assert data["counts"] == {"due_today": 1, "overdue": 2, "completed_yesterday": 1}
    assert data["due_today"][0]["when"] == "Tue 05 May 17:00"  # local time
    assert notification.text == "Your tasks for Tue 05 May: 1 due today, 2 overdue, 1 completed yesterday"
    assert not notification.show_in_app and notification.email_state == "pending"  # email-first by default
    message = email_message(notification)
    assert "due this evening" in message.body and "done late yesterday" in message.alternatives[0][0]


def test_many_overdue_tasks_are_all_counted_and_the_oldest_listed(cast, settings):
    settings.SUMMARY_MAX_LISTED = 3
    user, other = user_in(cast, "behind", BERLIN), user_in(cast, "also-behind", BERLIN)
    for day in range(1, 8):
        TaskFactory(project=cast.project, assignee=user, title=f"late {day}", due_at=at(BERLIN, 2026, 4, day, 12))
        TaskFactory(project=cast.project, assignee=other, title=f"other {day}", due_at=at(BERLIN, 2026, 4, day, 9))
    with time_machine.travel(at(BERLIN, 2026, 5, 5, 8, 10), tick=False):
        summaries.daily_summaries_send()
    for who, prefix in ((user, "late"), (other, "other")):
        data = Notification.objects.get(recipient=who, kind="daily_summary").data
        assert data["counts"]["overdue"] == 7
        assert [t["title"] for t in data["overdue"]] == [f"{prefix} 1", f"{prefix} 2", f"{prefix} 3"]


def test_empty_summary_is_skipped_and_the_day_is_not_looked_at_again(cast, django_assert_max_num_queries):
    idle = user_in(cast, "idle", BERLIN)
    with time_machine.travel(at(BERLIN, 2026, 5, 5, 8, 10), tick=False):
        summaries.daily_summaries_send()
    assert not Notification.objects.filter(recipient=idle).exists()
    assert SummaryDelivery.objects.get(user=idle, kind="daily_summary").outcome == "empty"
    with time_machine.travel(at(BERLIN, 2026, 5, 5, 9, 10), tick=False):
        assert summaries.due_users(kind="daily_summary", now=at(BERLIN, 2026, 5, 5, 9, 10)) == []
        with django_assert_max_num_queries(2):  # the timezones, the (empty) list of due users
            assert summaries.daily_summaries_send()["users"] == 0


@pytest.mark.parametrize(
    "send", [summaries.daily_summaries_send, summaries.weekly_reports_send], ids=["daily", "weekly"]
)
def test_task_reads_are_per_batch_not_per_user(cast, settings, send):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.SUMMARY_USER_BATCH = 50
    now = at(BERLIN, 2026, 3, 30, 8, 10)  # a Monday
    made = []

    def run_with(n):
        SummaryDelivery.objects.all().delete()
        Notification.objects.all().delete()
        while len(made) < n:
            user = user_in(cast, f"batch-{len(made)}", BERLIN)
            TaskFactory(project=cast.project, assignee=user, due_at=at(BERLIN, 2026, 3, 27, 17, 0))
            TaskFactory(
                project=cast.project, assignee=user, status=Status.DONE, completed_at=at(BERLIN, 2026, 3, 29, 17, 0)
            )
            made.append(user)
        with time_machine.travel(now, tick=False), CaptureQueriesContext(connection) as ctx:
            report = send()
        assert report["sent"] == n
        task_reads = [q for q in ctx.captured_queries if 'FROM "tasks_app_task"' in q["sql"]]
        return len(task_reads), len(ctx.captured_queries)

    (few_reads, few), (many_reads, many) = run_with(2), run_with(12)
    assert few_reads == many_reads <= 4
    # What remains per user are its own writes: savepoints, the delivery row, the preference, the notification.
    assert (many - few) / 10 <= 8, (few, many)


def crafted_week(cast):
    """Berlin user; week 2026-W13 (Mon Mar 23 - Sun Mar 29, which ends with the switch to summer time)."""
    user = user_in(cast, "reporter", BERLIN)
    other = user_in(cast, "bystander", BERLIN)

    def done(when, due=None, assignee=user):
        return TaskFactory(project=cast.project, assignee=assignee, status=Status.DONE, completed_at=when, due_at=due)

    # Completed per day: Mon 2, Tue 0, Wed 3, Thu 1, Fri 0, Sat 0, Sun 1 = 7.
    done(at(BERLIN, 2026, 3, 23, 0, 10), due=at(BERLIN, 2026, 3, 24, 12))  # due in the week, done in time
    done(at(BERLIN, 2026, 3, 23, 16, 0))
    done(at(BERLIN, 2026, 3, 25, 9, 0), due=at(BERLIN, 2026, 3, 25, 18))  # due in the week, done in time
    done(at(BERLIN, 2026, 3, 25, 11, 0))
    done(at(BERLIN, 2026, 3, 25, 23, 59))
    done(at(BERLIN, 2026, 3, 26, 14, 0), due=at(BERLIN, 2026, 3, 27, 12))  # due in the week, done in time
    done(at(BERLIN, 2026, 3, 29, 23, 30))  # Sunday after the DST switch (21:30 UTC)
    # The week before: 4 (one of them Sunday 23:50, i.e. 22:50 UTC on Mar 22).
    for when in (
        at(BERLIN, 2026, 3, 16, 10),
        at(BERLIN, 2026, 3, 18, 10),
        at(BERLIN, 2026, 3, 20, 10),
        at(BERLIN, 2026, 3, 22, 23, 50),
    ):
        done(when)
    done(at(BERLIN, 2026, 3, 30, 7, 0), due=at(BERLIN, 2026, 3, 28, 12))  # due in the week, done after it
    TaskFactory(project=cast.project, assignee=user, due_at=at(BERLIN, 2026, 3, 26, 12))  # due, still open
    TaskFactory(project=cast.project, assignee=user, due_at=at(BERLIN, 2026, 3, 27, 12), status=Status.CANCELLED)
    TaskFactory(project=cast.project, assignee=user, due_at=at(BERLIN, 2026, 3, 10, 12))  # old, open: overdue
    TaskFactory(project=cast.project, assignee=user, due_at=at(BERLIN, 2026, 4, 2, 12))  # future
    done(at(BERLIN, 2026, 3, 25, 9, 0), assignee=other)
    TaskFactory(project=cast.project, assignee=other, due_at=at(BERLIN, 2026, 3, 26, 12))
    return user


EXPECTED_WEEK = {
    "week": "2026-W13",
    "start": "2026-03-23",
    "end": "2026-03-29",
    "per_day": [2, 0, 3, 1, 0, 0, 1],
    "completed": 7,
    "previous_completed": 4,
    "change": 3,
    "change_pct": 75,
    "due": 5,
    "done_of_due": 3,
    "completion_rate": 60,
    "overdue": 2,
}


def test_weekly_report_numbers_for_a_crafted_week(cast):
    user = crafted_week(cast)
    with time_machine.travel(at(BERLIN, 2026, 3, 30, 8, 5), tick=False):
        report = summaries.weekly_reports_send()
    with time_machine.travel(at(BERLIN, 2026, 3, 30, 9, 5), tick=False):
        summaries.weekly_reports_send()  # same ISO week: nothing more
    with time_machine.travel(at(BERLIN, 2026, 3, 31, 8, 5), tick=False):
        summaries.weekly_reports_send()  # not Monday
    assert report["sent"] >= 1
    notification = Notification.objects.get(recipient=user, kind="weekly_report")
    data = notification.data
    got = {k: data[k] for k in EXPECTED_WEEK if k != "per_day"}
    assert got == {k: v for k, v in EXPECTED_WEEK.items() if k != "per_day"}
    assert [d["count"] for d in data["days"]] == EXPECTED_WEEK["per_day"]
    assert [d["label"] for d in data["days"]] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert [d["height"] for d in data["days"]] == [80, 2, 120, 40, 2, 2, 40]
    assert notification.text == (
        "Your week 2026-W13: 7 tasks completed (+3 vs the week before), 60% of tasks due done, 2 overdue"
    )
    html = email_message(notification).alternatives[0][0]
    assert html.count('style="height: 120px;') == 1 and html.count('style="height: 2px;') == 3  # inline CSS bars
    for external in ("<img", "<link", "<script", "src=", "url("):  # renders with no external resources
        assert external not in html
    if os.environ.get("WRITE_WEEKLY_REPORT_EXAMPLE"):
        with open(os.environ["WRITE_WEEKLY_REPORT_EXAMPLE"], "w") as f:
            f.write(html)


def test_weekly_report_counts_by_the_users_own_week(cast):
    """The same UTC instants fall in different local days in Kolkata and Los Angeles."""
    kolkata, la = user_in(cast, "k", KOLKATA), user_in(cast, "l", LA)
    when = datetime(2026, 3, 22, 20, 0, tzinfo=UTC)  # Mon 01:30 in Kolkata (W13), Sun 13:00 in LA (W12)
    for user in (kolkata, la):
        TaskFactory(project=cast.project, assignee=user, status=Status.DONE, completed_at=when)
    with time_machine.travel(at(KOLKATA, 2026, 3, 30, 8, 5), tick=False):
        summaries.weekly_reports_send()
    with time_machine.travel(at(LA, 2026, 3, 23, 8, 5), tick=False):
        summaries.weekly_reports_send()
    k = Notification.objects.get(recipient=kolkata, kind="weekly_report").data
    la_report = Notification.objects.get(recipient=la, kind="weekly_report").data
    assert (k["week"], [d["count"] for d in k["days"]][0]) == ("2026-W13", 1)
    assert (la_report["week"], [d["count"] for d in la_report["days"]][6]) == ("2026-W12", 1)
    assert Counter(SummaryDelivery.objects.values_list("kind", flat=True))["weekly_report"] >= 2


def test_the_two_hourly_entries_are_seeded_on_the_reminders_queue(db):
    from django_celery_beat.models import PeriodicTask

    from core.schedules import SPEC_SCHEDULE_NAMES, seed_schedules

    seed_schedules()
    rows = {p.name: p for p in PeriodicTask.objects.select_related("interval")}
    for name, task in (
        ("Send Daily Task Summaries", "reminders.send_daily_task_summary"),
        ("Send Weekly Productivity Reports", "reminders.send_weekly_productivity_report"),
    ):
        row = rows[name]
        assert (row.task, row.queue, row.interval.every, row.interval.period, row.expire_seconds) == (
            task,
            "reminders",
            60,
            "minutes",
            3600,
        )
        assert name not in SPEC_SCHEDULE_NAMES
    assert rows["Send Reminder Notifications"].interval.every == 15
