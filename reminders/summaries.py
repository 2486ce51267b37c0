"""Daily task summary and weekly productivity report, at each user's local morning.

Both run from an hourly periodic entry and process users in batches inside the task (not one message
per user): each user's email is already its own message (the notification's send_email_notification),
so fanning out would only double the messages, and batching lets every batch read its tasks in a few
aggregate queries instead of a few per user.

A user is due when their local hour is in [morning_hour, morning_hour + SUMMARY_CATCH_UP_HOURS] on
the same local day (on Monday for the report) and no SummaryDelivery row exists for the period (local
date, or the reported ISO week). The row is written with the notification in one transaction; its
unique (user, kind, period_key) makes two beats or a redelivery send at most one. The catch-up window
covers a beat outage and the spring-forward gap (a morning hour that does not exist that day).
"""

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from notifications.services import notification_create
from reminders import conf
from reminders.models import SummaryDelivery, SummaryKind
from tasks_app.models import Profile, Status, Task

logger = logging.getLogger(__name__)

OPEN_STATUSES = (Status.TODO, Status.IN_PROGRESS)
DAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
CHART_HEIGHT = 120  # px of the tallest bar


def _zone(name):
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        return None


def _midnight(day, zone):
    """Local midnight of `day` in `zone`, in UTC (zoneinfo resolves DST days to their real length)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


def _fmt(value, zone):
    return value.astimezone(zone).strftime("%a %d %b %H:%M")


def daily_period(now, zone):
    return now.astimezone(zone).date().isoformat()


def weekly_period(now, zone):
    """The ISO week reported on a local Monday: the week before."""
    year, week, _ = (now.astimezone(zone).date() - dt.timedelta(days=7)).isocalendar()
    return f"{year}-W{week:02d}"


def due_users(*, kind, now):
    """[(user_id, timezone)] of active users whose summary of `kind` is due now, by user id."""
    cap = conf.SUMMARY_CATCH_UP_HOURS
    condition = Q(pk__in=[])
    for name in Profile.objects.values_list("timezone", flat=True).distinct().order_by():
        zone = _zone(name)
        if zone is None:
            continue
        local = now.astimezone(zone)
        if kind == SummaryKind.WEEKLY and local.weekday() != 0:
            continue
        key = (weekly_period if kind == SummaryKind.WEEKLY else daily_period)(now, zone)
        sent = SummaryDelivery.objects.filter(user_id=OuterRef("user_id"), kind=kind, period_key=key)
        condition |= Q(
            Q(timezone=name, morning_hour__lte=local.hour, morning_hour__gte=local.hour - cap) & ~Exists(sent)
        )
    return list(
        Profile.objects.filter(condition, user__is_active=True).order_by("user_id").values_list("user_id", "timezone")
    )


def _batches(rows, size):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _record(*, user, kind, period_key, text, data, empty):
    """Write the delivery row and (unless empty) the notification, once per period. Returns the outcome."""
    try:
        with transaction.atomic():
            row = SummaryDelivery.objects.create(
                user=user, kind=kind, period_key=period_key, outcome="empty" if empty else "sent"
            )
    except IntegrityError:
        return "duplicate"
    if empty:
        return "empty"
    notification = notification_create(recipient=user, kind=kind, text=text, data=data)
    if notification is None:
        SummaryDelivery.objects.filter(pk=row.pk).update(outcome="off")
        return "off"
    SummaryDelivery.objects.filter(pk=row.pk).update(notification_id=notification.pk)
    return "sent"


def _run(kind, batch_fn, now, batch_size):
    now = now or timezone.now()
    batch_size = batch_size or conf.SUMMARY_USER_BATCH
    report = {"users": 0, "sent": 0, "empty": 0, "off": 0, "duplicate": 0, "batches": 0}
    for batch in _batches(due_users(kind=kind, now=now), batch_size):
        with transaction.atomic():
            outcomes = batch_fn(batch, now)
        report["users"] += len(batch)
        report["batches"] += 1
        for outcome in outcomes:
            report[outcome] += 1
    return report


# --- daily -----------------------------------------------------------------
def _task_item(task, zone, when):
    return {"id": task["id"], "title": task["title"], "project": task["project__name"], "when": _fmt(task[when], zone)}


def _daily_batch(batch, now):
    users = get_user_model().objects.in_bulk([user_id for user_id, _ in batch])
    zones, windows = {}, {}
    for user_id, name in batch:
        zone = zones[user_id] = _zone(name)
        today = now.astimezone(zone).date()
        windows[user_id] = (
            _midnight(today - dt.timedelta(days=1), zone),
            _midnight(today, zone),
            _midnight(today + dt.timedelta(days=1), zone),
        )
    ids = list(windows)
    latest_end = max(w[2] for w in windows.values())
    earliest_yesterday = min(w[0] for w in windows.values())
    latest_today = max(w[1] for w in windows.values())
    listed = conf.SUMMARY_MAX_LISTED
    fields = ("id", "title", "project__name", "assignee_id", "due_at", "completed_at")
    mine = Task.objects.filter(assignee_id__in=ids)
    overdue = mine.filter(status__in=OPEN_STATUSES, due_at__lt=now)
    # Overdue tasks can pile up for years: count them all, fetch only the first `listed` per user.
    overdue_counts = dict(
        overdue.values("assignee_id").annotate(n=Count("id")).order_by().values_list("assignee_id", "n")
    )
    overdue_rows = (
        overdue.annotate(
            rank=Window(RowNumber(), partition_by=[F("assignee_id")], order_by=[F("due_at").asc(), F("id").asc()])
        )
        .filter(rank__lte=listed)
        .order_by("due_at", "id")
        .values(*fields)
    )
    due_soon = (
        mine.filter(status__in=OPEN_STATUSES, due_at__gte=now, due_at__lt=latest_end)
        .order_by("due_at", "id")
        .values(*fields)
    )
    completed = (
        mine.filter(status=Status.DONE, completed_at__gte=earliest_yesterday, completed_at__lt=latest_today)
        .order_by("completed_at", "id")
        .values(*fields)
    )
    per_user = {user_id: {"due_today": [], "overdue": [], "completed_yesterday": []} for user_id in ids}
    for task in overdue_rows:
        per_user[task["assignee_id"]]["overdue"].append(task)
    for task in due_soon:
        if task["due_at"] < windows[task["assignee_id"]][2]:
            per_user[task["assignee_id"]]["due_today"].append(task)
    for task in completed:
        yesterday_start, today_start, _ = windows[task["assignee_id"]]
        if yesterday_start <= task["completed_at"] < today_start:
            per_user[task["assignee_id"]]["completed_yesterday"].append(task)

    outcomes = []
    for user_id in ids:
        zone, sections = zones[user_id], per_user[user_id]
        counts = {name: len(items) for name, items in sections.items()}
        counts["overdue"] = overdue_counts.get(user_id, 0)
        local_day = now.astimezone(zone).date()
        data = {
            "date": local_day.isoformat(),
            "timezone": str(zone),
            "counts": counts,
            **{
                name: [
                    _task_item(t, zone, "completed_at" if name == "completed_yesterday" else "due_at")
                    for t in items[:listed]
                ]
                for name, items in sections.items()
            },
        }
        text = (
            f"Your tasks for {local_day:%a %d %b}: {counts['due_today']} due today, "
            f"{counts['overdue']} overdue, {counts['completed_yesterday']} completed yesterday"
        )
        outcomes.append(
            _record(
                user=users[user_id],
                kind=SummaryKind.DAILY,
                period_key=local_day.isoformat(),
                text=text,
                data=data,
                empty=not any(counts.values()),
            )
        )
    return outcomes


def daily_summaries_send(*, now=None, batch_size=None):
    """The body of send_daily_task_summary. Returns counts."""
    return _run(SummaryKind.DAILY, _daily_batch, now, batch_size)


# --- weekly ----------------------------------------------------------------
def week_stats(*, completed_at, due, overdue, zone, monday):
    """The report's numbers for the week starting `monday` (a local date).

    completed_at: completion times of the user's done tasks (covering this and the previous week);
    due: (due_at, status, completed_at) of the user's non-cancelled tasks due that week;
    overdue: open tasks past their due date now.
    """
    bounds = [_midnight(monday + dt.timedelta(days=d), zone) for d in range(-7, 8)]
    previous_start, start, end = bounds[0], bounds[7], bounds[14]
    per_day = [0] * 7
    previous = 0
    for when in completed_at:
        if start <= when < end:
            for day in range(7):
                if when < bounds[8 + day]:
                    per_day[day] += 1
                    break
        elif previous_start <= when < start:
            previous += 1
    total = sum(per_day)
    due_count = sum(1 for due_at, status, _ in due if start <= due_at < end and status != Status.CANCELLED)
    done_of_due = sum(
        1
        for due_at, status, done_at in due
        if start <= due_at < end and status == Status.DONE and done_at is not None and done_at < end
    )
    top = max(per_day) or 1
    return {
        "week": f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}",
        "start": monday.isoformat(),
        "end": (monday + dt.timedelta(days=6)).isoformat(),
        "days": [
            {
                "label": DAY_LABELS[d],
                "date": (monday + dt.timedelta(days=d)).isoformat(),
                "count": n,
                "height": max(2, round(CHART_HEIGHT * n / top)) if n else 2,
            }
            for d, n in enumerate(per_day)
        ],
        "completed": total,
        "previous_completed": previous,
        "change": total - previous,
        "change_pct": round(100 * (total - previous) / previous) if previous else None,
        "due": due_count,
        "done_of_due": done_of_due,
        "completion_rate": round(100 * done_of_due / due_count) if due_count else None,
        "overdue": overdue,
    }


def report_text(stats):
    change = f"{stats['change']:+d} vs the week before"
    rate = (
        f"{stats['completion_rate']}% of tasks due done"
        if stats["completion_rate"] is not None
        else "no tasks were due"
    )
    return (
        f"Your week {stats['week']}: {stats['completed']} tasks completed ({change}), {rate}, "
        f"{stats['overdue']} overdue"
    )


def _weekly_batch(batch, now):
    users = get_user_model().objects.in_bulk([user_id for user_id, _ in batch])
    zones, mondays = {}, {}
    for user_id, name in batch:
        zone = zones[user_id] = _zone(name)
        mondays[user_id] = now.astimezone(zone).date() - dt.timedelta(days=7)
    ids = list(zones)
    earliest = min(_midnight(m - dt.timedelta(days=7), zones[u]) for u, m in mondays.items())
    latest = max(_midnight(m + dt.timedelta(days=7), zones[u]) for u, m in mondays.items())
    completed = {user_id: [] for user_id in ids}
    for user_id, done_at in Task.objects.filter(
        assignee_id__in=ids, status=Status.DONE, completed_at__gte=earliest, completed_at__lt=latest
    ).values_list("assignee_id", "completed_at"):
        completed[user_id].append(done_at)
    due = {user_id: [] for user_id in ids}
    for user_id, *row in (
        Task.objects.filter(
            assignee_id__in=ids, due_at__gte=min(_midnight(m, zones[u]) for u, m in mondays.items()), due_at__lt=latest
        )
        .exclude(status=Status.CANCELLED)
        .values_list("assignee_id", "due_at", "status", "completed_at")
    ):
        due[user_id].append(tuple(row))
    overdue = dict(
        Task.objects.filter(assignee_id__in=ids, status__in=OPEN_STATUSES, due_at__lt=now)
        .values("assignee_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("assignee_id", "n")
    )
    outcomes = []
    for user_id in ids:
        stats = week_stats(
            completed_at=completed[user_id],
            due=due[user_id],
            overdue=overdue.get(user_id, 0),
            zone=zones[user_id],
            monday=mondays[user_id],
        )
        empty = not (stats["completed"] or stats["previous_completed"] or stats["due"] or stats["overdue"])
        outcomes.append(
            _record(
                user=users[user_id],
                kind=SummaryKind.WEEKLY,
                period_key=stats["week"],
                text=report_text(stats),
                data=stats,
                empty=empty,
            )
        )
    return outcomes


def weekly_reports_send(*, now=None, batch_size=None):
    """The body of send_weekly_productivity_report. Returns counts."""
    return _run(SummaryKind.WEEKLY, _weekly_batch, now, batch_size)
