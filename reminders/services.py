"""Reminders: writes, following task changes (a task_updated receiver), the sweep that claims due reminders, and the send.

Rules (README "Reminders"):
- a reminder is absolute (`remind_at`) or relative to the due date (`offset`, negative = before);
  `fire_at` = remind_at, or due_at + offset (null while the task has no due date);
- the recipient is the assignee by default (and then follows reassignment until sent); on a task
  without an assignee, the member who creates the reminder;
- moving the due date moves relative reminders; a handled reminder is re-armed only when its new
  fire_at is in the future;
- the sweep claims due, unsent reminders (FOR UPDATE SKIP LOCKED on PostgreSQL, one conditional
  UPDATE with a claim token on SQLite) and queues send_task_reminder(id) on commit; a claimed, unsent
  reminder is an outbox row (apps.py): core.sweep_pending re-publishes it OUTBOX_SWEEP_AFTER_SECONDS
  after its last publish, and at once when the broker comes back or a worker dies; a claim that
  stays unsent for REMINDER_CLAIM_STALE_SECONDS is taken again (the last resort);
- send_task_reminder sets sent_at with one conditional UPDATE before writing the notification, in
  one transaction: a redelivered or duplicated message finds nothing to do.
"""

import logging
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.enqueue import enqueue_on_commit
from core.exceptions import ApplicationError, CodedMessage, Conflict
from notifications.services import notification_create
from reminders import conf
from reminders.models import Reminder, ReminderOutcome
from tasks_app.models import CLOSED_STATUSES, Membership, Profile, Role, Task
from tasks_app.permissions import require_role

logger = logging.getLogger(__name__)

SEND_TASK = "reminders.send_task_reminder"
MAX_OFFSET = timedelta(days=366)


def _fire_at(*, task, remind_at, offset):
    if offset is not None:
        return task.due_at + offset if task.due_at else None
    return remind_at


# Refusals that depend on the clock or on the task and project as they are now, with codes of their own.
IN_THE_PAST = "This time is in the past."
NO_DUE_DATE = "The task has no due date; set one or use remind_at."
NOT_A_MEMBER = "This user is not a member of the project."
# A change that leaves neither (or both) of remind_at and offset_minutes set. A new reminder's schema states the
# rule (exactly one); on a change it depends on the reminder's current kind, so it has a code of its own too.
EITHER_TIMING = "Give either remind_at or offset_minutes (relative to the due date)."
_CODES = {
    IN_THE_PAST: "in_the_past",
    NO_DUE_DATE: "no_due_date",
    NOT_A_MEMBER: "not_a_member",
    EITHER_TIMING: "remind_at_or_offset",
}


def _timing_errors(*, task, remind_at, offset, now):
    """Field errors of a reminder's timing, and its fire_at."""
    field = "offset_minutes" if offset is not None else "remind_at"
    if (remind_at is None) == (offset is None):
        return {"remind_at": EITHER_TIMING}, None
    if offset is not None and abs(offset) > MAX_OFFSET:
        return {field: "At most 366 days before or after the due date."}, None
    if offset is not None and task.due_at is None:
        return {field: NO_DUE_DATE}, None
    fire_at = _fire_at(task=task, remind_at=remind_at, offset=offset)
    if fire_at <= now:
        return {field: IN_THE_PAST}, None
    return {}, fire_at


def _recipient(*, task, actor, recipient):
    """(recipient, follows_assignee, errors). None means the default: the assignee, else the actor."""
    if recipient is None:
        if task.assignee_id is not None:
            return task.assignee, True, {}
        return actor, False, {}
    if not Membership.objects.filter(project_id=task.project_id, user=recipient).exists():
        return None, False, {"recipient": NOT_A_MEMBER}
    return recipient, False, {}


def _raise(errors):
    if errors:
        # Each field's error keeps its own code, also when two refusals of different kinds come together.
        fields = {field: CodedMessage(message, _CODES.get(message, "invalid")) for field, message in errors.items()}
        codes = {message.code for message in fields.values()}
        code = codes.pop() if len(codes) == 1 else "invalid"
        raise ApplicationError("The reminder is not valid.", fields=fields, code=code)


def _check_writable(*, task, actor):
    require_role(user=actor, project=task.project, minimum=Role.MEMBER, action="change reminders")
    if task.project.archived:
        raise Conflict("The project is archived; unarchive it to change its tasks.", code="archived")


@transaction.atomic
def reminder_create(*, task, actor, remind_at=None, offset=None, recipient=None, note=""):
    task = Task.objects.select_for_update(of=("self",)).select_related("project", "assignee").get(pk=task.pk)
    _check_writable(task=task, actor=actor)
    if task.status in CLOSED_STATUSES:
        raise Conflict("The task is done or cancelled; reopen it to add reminders.", code="task_closed")
    errors, fire_at = _timing_errors(task=task, remind_at=remind_at, offset=offset, now=timezone.now())
    recipient, follows, recipient_errors = _recipient(task=task, actor=actor, recipient=recipient)
    _raise({**errors, **recipient_errors})
    return Reminder.objects.create(
        task=task,
        recipient=recipient,
        follows_assignee=follows,
        created_by=actor,
        remind_at=remind_at,
        offset=offset,
        note=note,
        fire_at=fire_at,
    )


@transaction.atomic
def reminder_update(*, reminder, actor, data):
    """data: any of remind_at, offset, recipient, note. Switching kind: give the other field and None for this."""
    task = Task.objects.select_for_update(of=("self",)).select_related("project", "assignee").get(pk=reminder.task_id)
    _check_writable(task=task, actor=actor)
    reminder = Reminder.objects.select_for_update().get(pk=reminder.pk)
    remind_at = data.get("remind_at", reminder.remind_at)
    offset = data.get("offset", reminder.offset)
    if "remind_at" in data and data["remind_at"] is not None and "offset" not in data:
        offset = None
    if "offset" in data and data["offset"] is not None and "remind_at" not in data:
        remind_at = None
    errors, fire_at = {}, reminder.fire_at
    now = timezone.now()
    timing_changed = (remind_at, offset) != (reminder.remind_at, reminder.offset)
    if timing_changed:
        errors, fire_at = _timing_errors(task=task, remind_at=remind_at, offset=offset, now=now)
    if "recipient" in data:
        recipient, follows, recipient_errors = _recipient(task=task, actor=actor, recipient=data["recipient"])
        errors.update(recipient_errors)
    else:
        recipient, follows = reminder.recipient, reminder.follows_assignee
    _raise(errors)
    reminder.recipient, reminder.follows_assignee = recipient, follows
    if timing_changed:
        reminder.remind_at, reminder.offset, reminder.fire_at = remind_at, offset, fire_at
        _rearm(reminder, now)
    if "note" in data:
        reminder.note = data["note"]
    reminder.save()
    return reminder


@transaction.atomic
def reminder_delete(*, reminder, actor):
    task = Task.objects.select_related("project").get(pk=reminder.task_id)
    _check_writable(task=task, actor=actor)
    reminder.delete()


def _rearm(reminder, now):
    """A moved reminder fires again if its new time is still to come."""
    if reminder.fire_at is not None and reminder.fire_at > now:
        reminder.sent_at = None
        reminder.claimed_at = None
        reminder.enqueued_at = None
        reminder.outcome = ReminderOutcome.PENDING


def reminders_follow_task(*, task, changes):
    """On task_updated (inside task_update's transaction): move relative reminders, follow the assignee."""
    if "due_at" in changes:
        now = timezone.now()
        moved = []
        for reminder in Reminder.objects.select_for_update().filter(task=task, offset__isnull=False):
            fire_at = task.due_at + reminder.offset if task.due_at else None
            if fire_at == reminder.fire_at:
                continue
            reminder.fire_at = fire_at
            _rearm(reminder, now)
            moved.append(reminder)
        if moved:
            Reminder.objects.bulk_update(
                moved, ["fire_at", "sent_at", "claimed_at", "enqueued_at", "outcome", "updated_at"]
            )
    if "assignee" in changes and task.assignee_id is not None:
        Reminder.objects.filter(task=task, follows_assignee=True, sent_at__isnull=True).update(
            recipient_id=task.assignee_id, updated_at=timezone.now()
        )


# --- the sweep -------------------------------------------------------------
def _claimable(now):
    stale = now - timedelta(seconds=conf.REMINDER_CLAIM_STALE_SECONDS)
    return Reminder.objects.filter(fire_at__lte=now, sent_at__isnull=True).filter(
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=stale)
    )


@transaction.atomic
def _claim_batch(*, now, size):
    """Claim up to `size` due reminders; queue one send_task_reminder per claim on commit. Returns the ids."""
    if connection.vendor == "postgresql":
        ids = list(
            _claimable(now)
            .order_by("fire_at", "id")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:size]
        )
        if ids:
            Reminder.objects.filter(pk__in=ids).update(claimed_at=now, enqueued_at=None)
    else:
        # SQLite has no row locks: one UPDATE (atomic; writers are serialised) stamps the rows with this
        # run's token, re-checking the claim condition, so a concurrent run cannot take the same rows.
        token = uuid.uuid4().hex
        _claimable(now).filter(pk__in=_claimable(now).order_by("fire_at", "id").values("id")[:size]).update(
            claimed_at=now, claim_token=token, enqueued_at=None
        )
        ids = list(Reminder.objects.filter(claim_token=token).values_list("id", flat=True))
    # A claim is a new publish (`enqueued_at` cleared): if this message is lost, the outbox sweep
    # re-publishes it (apps.py) from `claimed_at`.
    for reminder_id in ids:
        enqueue_on_commit(SEND_TASK, args=[reminder_id])
    return ids


def reminders_claim_due(*, now=None, batch_size=None, max_reminders=None):
    """The body of send_reminder_notifications. Returns {"claimed": n, "batches": n}."""
    now = now or timezone.now()
    batch_size = batch_size or conf.REMINDER_SWEEP_BATCH
    max_reminders = max_reminders or conf.REMINDER_MAX_PER_RUN
    report = {"claimed": 0, "batches": 0}
    while report["claimed"] < max_reminders:
        ids = _claim_batch(now=now, size=min(batch_size, max_reminders - report["claimed"]))
        if not ids:
            break
        report["claimed"] += len(ids)
        report["batches"] += 1
    return report


def _reminder_text(reminder, task):
    when = ""
    if task.due_at:
        delta = task.due_at - timezone.now()
        if delta.total_seconds() >= 0:
            hours = int(delta.total_seconds() // 3600)
            if hours >= 48:
                when = f" is due in {hours // 24} days"
            else:
                when = f" is due in {hours} h" if hours else " is due within the hour"
        else:
            when = " is overdue"
    text = f"Reminder: \u201c{task.title}\u201d{when}"
    return f"{text} \u2014 {reminder.note}" if reminder.note else text


def _user_zone(user_id):
    name = Profile.objects.filter(user_id=user_id).values_list("timezone", flat=True).first() or "UTC"
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        return ZoneInfo("UTC")


@transaction.atomic
def reminder_send(*, reminder_id, now=None):
    """Handle one claimed reminder exactly once. Returns a small dict (no addresses)."""
    now = now or timezone.now()
    # The conditional UPDATE is the "exactly once": a second message, or a reminder re-armed to a later
    # time meanwhile, updates nothing. It runs first, so it also takes the write lock on SQLite.
    if not Reminder.objects.filter(pk=reminder_id, sent_at__isnull=True, fire_at__lte=now).update(sent_at=now):
        return {"reminder": reminder_id, "outcome": "nothing_to_do"}
    reminder = Reminder.objects.select_related("task__project", "recipient").get(pk=reminder_id)
    task = reminder.task
    if task.status in CLOSED_STATUSES:
        outcome = ReminderOutcome.SKIPPED_CLOSED
    elif not Membership.objects.filter(project_id=task.project_id, user_id=reminder.recipient_id).exists():
        outcome = ReminderOutcome.SKIPPED_NOT_MEMBER
    else:
        outcome = ReminderOutcome.SENT
        data = {"reminder_id": reminder.pk}
        if task.due_at:
            zone = _user_zone(reminder.recipient_id)
            data["due_local"] = f"{task.due_at.astimezone(zone):%a %d %b %Y %H:%M} ({zone.key})"
        notification_create(
            recipient=reminder.recipient, kind="reminder", text=_reminder_text(reminder, task), task=task, data=data
        )
    Reminder.objects.filter(pk=reminder_id).update(outcome=outcome)
    return {"reminder": reminder_id, "outcome": outcome}
