"""Two beat processes both scheduling (leader lock off: BEAT_LEADER_LOCK=false) over a simulated 30 minutes of due work:
0 duplicate recurring instances, reminders or daily summaries."""

import collections
import sys
import time
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from notifications.models import Notification
from reminders.models import Reminder, SummaryDelivery, SummaryKind
from tasks_app.models import Profile, Role, Task
from tasks_app.recurring.templates import recurring_template_create
from tasks_app.tests.factories import MembershipFactory, ProjectFactory, TaskFactory, UserFactory
from tests.faults.conftest import set_intervals
from tests.support import wait_until

pytestmark = pytest.mark.faults
HOUR = timedelta(hours=1)


def _templates(owner, project, t0):
    """(template, dtstart) of HOURLY templates: 100 whose one due occurrence fell in the last 30 min,
    5 missed for 30 h (catch_up "all": 31 instances each), 20 falling due while both beats run."""
    made = []

    def create(title, dtstart, now):
        made.append(
            recurring_template_create(
                actor=owner, project=project, title=title, rrule="FREQ=HOURLY", dtstart=dtstart, catch_up="all", now=now
            )
        )

    for i in range(100):
        start = t0 - timedelta(minutes=30) + i * timedelta(seconds=18)
        create(f"past {i}", start, start)  # as if created then and beat was down since
    for i in range(5):
        start = t0 - 30 * HOUR - i * timedelta(minutes=1)
        create(f"catch-up {i}", start, start)
    for i in range(20):
        create(f"live {i}", t0 + timedelta(seconds=20 + i), t0)
    return made


def _reminders(project, members, t0):
    tasks = [TaskFactory(project=project, assignee=members[i % len(members)]) for i in range(20)]
    rows = []
    for i in range(220):
        # 200 fell due over the last 30 min, 20 fall due while the beats run
        at = t0 - timedelta(minutes=30) + i * timedelta(seconds=9) if i < 200 else t0 + timedelta(seconds=i - 180)
        task = tasks[i % len(tasks)]
        rows.append(Reminder(task=task, recipient=task.assignee, remind_at=at, fire_at=at))
    return Reminder.objects.bulk_create(rows)


def _expected_occurrences(template, until):
    out, at = [], template.dtstart
    while at <= until:
        out.append(at)
        at += HOUR
    return out


def _noon_zone(now):
    """A whole-hour fixed-offset zone (Etc/GMT-14 .. Etc/GMT+11) where it is 12:xx at `now`."""
    offset = 12 - now.astimezone(UTC).hour  # -11 .. +12 hours east of UTC
    zone = ZoneInfo("Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}")  # POSIX sign: Etc/GMT-5 is UTC+5
    assert now.astimezone(zone).hour == 12
    return zone


def test_two_beats_create_each_instance_reminder_and_summary_once(local_stack):
    t0 = timezone.now().replace(microsecond=0)  # RRULE occurrences have whole seconds
    owner = UserFactory(username="beats-owner")
    project = ProjectFactory(owner=owner)
    members = [
        MembershipFactory(project=project, user=UserFactory(username=f"beats-m{i}"), role=Role.MEMBER).user
        for i in range(20)
    ]
    # The 20 members' daily summary is due now and not empty: they live where it is noon at t0 and their
    # morning hour is 12, so the run is hours away from a local midnight whatever the wall clock says.
    zone = _noon_zone(t0)
    Profile.objects.filter(user__in=members).update(timezone=zone.key, morning_hour=12)
    for m in members:
        TaskFactory(project=project, assignee=m, due_at=t0 - timedelta(days=1))
    templates = _templates(owner, project, t0)
    reminders = _reminders(project, members, t0)

    set_intervals({"Process Recurring Tasks": 1, "Send Reminder Notifications": 1, "Send Daily Task Summaries": 1})
    # Both beats schedule (no leader lock), as if two were run by mistake: the data must still hold.
    local_stack.env["BEAT_LEADER_LOCK"] = "false"
    queues = "default,recurring,reminders"
    started = time.monotonic()
    local_stack.worker("worker1", queues=queues, concurrency=4)
    local_stack.worker("worker2", queues=queues, concurrency=4)
    for name in ("beat1", "beat2"):  # INFO, so each beat's log shows what it sent
        local_stack._spawn(name, [sys.executable, "manage.py", "celery_beat", "--loglevel", "INFO"])

    def instances():
        return Task.objects.filter(recurring_template__in=templates).count()

    until = t0 + timedelta(seconds=45)
    expected = {t.pk: _expected_occurrences(t, until) for t in templates}
    n_instances = sum(map(len, expected.values()))
    try:
        wait_until(lambda: instances() >= n_instances, f"{n_instances} recurring instances", timeout=80, step=0.5)
        wait_until(
            lambda: not Reminder.objects.filter(sent_at__isnull=True).exists(),
            "every reminder sent",
            timeout=30,
            step=0.5,
        )
        wait_until(
            lambda: SummaryDelivery.objects.filter(user__in=members).count() >= len(members),
            "every daily summary",
            timeout=30,
            step=0.5,
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}: instances {instances()}/{n_instances}, reminders unsent "
            f"{Reminder.objects.filter(sent_at__isnull=True).count()}, summaries "
            f"{SummaryDelivery.objects.filter(user__in=members).count()}; logs: "
            + " | ".join(f"{n}: {local_stack.log(n)[-1500:]}" for n in ("beat1", "worker1", "worker2"))
        ) from None
    time.sleep(3)  # both beats keep firing: anything duplicated would show up now
    local_stack.kill("beat1")
    local_stack.kill("beat2")
    time.sleep(1)
    elapsed = time.monotonic() - started
    sent = {name: local_stack.log(name).count("recurring.process_recurring_tasks") for name in ("beat1", "beat2")}
    assert min(sent.values()) >= 5, f"both beats must really have run: {sent}"

    by_template = collections.defaultdict(list)
    for template_id, occurrence in Task.objects.filter(recurring_template__in=templates).values_list(
        "recurring_template_id", "occurrence_at"
    ):
        by_template[template_id].append(occurrence)
    for template in templates:
        assert sorted(by_template[template.pk]) == expected[template.pk], template.title
    assert instances() == n_instances

    reminder_notes = collections.Counter(
        n.data.get("reminder_id") for n in Notification.objects.filter(kind="reminder")
    )
    assert set(reminder_notes) == {r.pk for r in reminders}
    assert max(reminder_notes.values()) == 1
    assert set(Reminder.objects.values_list("outcome", flat=True)) == {"sent"}

    summaries = collections.Counter(
        Notification.objects.filter(kind=SummaryKind.DAILY).values_list("recipient_id", flat=True)
    )
    assert {m.pk: 1 for m in members} == {m.pk: summaries[m.pk] for m in members}
    assert max(summaries.values()) == 1  # nobody else got two either
    assert SummaryDelivery.objects.filter(
        user__in=members, period_key=t0.astimezone(zone).date().isoformat(), outcome="sent"
    ).count() == len(members)
    print(
        f"\nFAULT two-beats: beats sent process_recurring_tasks {sent['beat1']}+{sent['beat2']} times; "
        f"recurring instances {n_instances}/{n_instances} from {len(templates)} templates, duplicates 0; "
        f"reminders {len(reminders)}/{len(reminders)} sent once, duplicates 0; daily summaries "
        f"{len(members)}/{len(members)}, duplicates 0; {elapsed:.1f}s"
    )
