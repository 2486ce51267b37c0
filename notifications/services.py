"""Writes for notifications: creation (honouring preferences), read state, preferences, email delivery, cleanup.

Creation happens inside the caller's transaction. The email is a state on the row ("pending") and the
message that delivers it (ids only) is published on commit; core.sweep_pending re-publishes rows that
stay pending (registered in apps.py).
"""

import logging
import random
import re
import smtplib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from core.enqueue import enqueue_on_commit
from core.exceptions import ApplicationError, NotFound
from notifications import conf
from notifications.mentions import mention_candidates, resolve_mentions
from notifications.models import DEFAULT_CHANNELS, EmailState, Kind, Notification, NotificationPreference
from notifications.selectors import notification_get, preference_for

logger = logging.getLogger(__name__)

EMAIL_TASK = "notifications.send_email_notification"
ASSIGNMENT_TASK = "notifications.send_task_assignment_notification"
MENTION_TASK = "notifications.send_comment_mention_notification"
REMINDERS_TASK = "reminders.send_reminder_notifications"
UNSUBSCRIBE_SALT = "notifications.unsubscribe"


# --- creation --------------------------------------------------------------
def _validate_kind(kind):
    if kind not in Kind.values:
        raise ApplicationError(f"Unknown notification kind {kind!r}.", fields={"kind": "Unknown kind."})


def _notification_write(*, recipient, kind, text, actor=None, task=None, comment=None, data=None,
                        email_task=EMAIL_TASK):
    _validate_kind(kind)
    channels = preference_for(user=recipient, kind=kind)
    if not channels["in_app"] and not channels["email"]:
        return None
    notification = Notification.objects.create(
        recipient=recipient, kind=kind, text=text[:500], actor=actor, task=task, comment=comment,
        data=data or {}, show_in_app=channels["in_app"],
        email_state=EmailState.PENDING if channels["email"] else EmailState.SKIPPED,
    )
    if channels["email"]:
        enqueue_on_commit(email_task, args=[notification.pk])
    return notification


@transaction.atomic
def notification_create(*, recipient, kind, text, actor=None, task=None, comment=None, data=None):
    """Write one notification in the caller's transaction. None when the user turned both channels off.

    With the email channel on, the row starts "pending" and notifications.send_email_notification(id)
    is published on commit; with it off, the row is "skipped". With only email on, the row is kept as
    the email record but hidden from the in-app list (show_in_app=False).
    """
    return _notification_write(recipient=recipient, kind=kind, text=text, actor=actor, task=task,
                               comment=comment, data=data)


def _display_name(user):
    if user is None:
        return "Someone"
    return user.get_full_name() or user.get_username()


@transaction.atomic
def notify_task_assigned(*, task, actor=None):
    """Notify the new assignee unless they assigned themselves; queues send_task_assignment_notification."""
    if task.assignee_id is None or (actor is not None and task.assignee_id == actor.pk):
        return None
    return _notification_write(
        recipient=task.assignee, kind=Kind.ASSIGNED, actor=actor, task=task,
        text=f"{_display_name(actor)} assigned you to \u201c{task.title}\u201d",
        email_task=ASSIGNMENT_TASK,
    )


@transaction.atomic
def notify_comment_mention(*, comment, actor=None, previous_body=None):
    """Notify project members @mentioned in `comment` (on edit: only names not in `previous_body`).

    Never the author, at most one notification per user per comment. Queues
    send_comment_mention_notification per notification. Returns the notifications written.
    """
    from tasks_app.models import Membership

    author_id = actor.pk if actor is not None else comment.author_id
    candidates = mention_candidates(comment.body)
    if not candidates:
        return []
    members = {
        m.user.get_username(): m.user
        for m in Membership.objects.filter(project_id=comment.task.project_id)
        .annotate(lname=Lower("user__username")).filter(lname__in=candidates).select_related("user")
    }
    mentioned = resolve_mentions(comment.body, members)
    if previous_body is not None:
        mentioned -= resolve_mentions(previous_body, members)
    recipients = [members[name] for name in sorted(mentioned) if members[name].pk != author_id]
    if not recipients:
        return []
    already = set(Notification.objects.filter(
        comment=comment, kind=Kind.MENTIONED, recipient__in=recipients).values_list("recipient_id", flat=True))
    written = []
    for user in recipients:
        if user.pk in already:
            continue
        try:
            with transaction.atomic():  # a concurrent edit may have notified them first (unique constraint)
                notification = _notification_write(
                    recipient=user, kind=Kind.MENTIONED, actor=actor, task=comment.task, comment=comment,
                    text=f"{_display_name(actor)} mentioned you on \u201c{comment.task.title}\u201d",
                    email_task=MENTION_TASK,
                )
        except IntegrityError:
            continue
        if notification is not None:
            written.append(notification)
    return written


def process_pending_reminders():
    """Queue reminders.send_reminder_notifications (that task belongs to the reminders issue)."""
    enqueue_on_commit(REMINDERS_TASK)


# --- read state ------------------------------------------------------------
@transaction.atomic
def notification_mark_read(*, user, notification_id):
    notification = notification_get(user=user, notification_id=notification_id)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=notification.read_at)
    return notification


@transaction.atomic
def notification_mark_all_read(*, user):
    return Notification.objects.filter(recipient=user, show_in_app=True, read_at__isnull=True).update(
        read_at=timezone.now()
    )


# --- preferences -----------------------------------------------------------
@transaction.atomic
def preferences_update(*, user, changes):
    """changes: {kind: {"in_app"?: bool, "email"?: bool}}. Unspecified channels keep their value."""
    unknown = sorted(set(changes) - set(Kind.values))
    if unknown:
        raise ApplicationError("Unknown notification kinds.", fields={k: "Unknown notification kind." for k in unknown})
    for kind, channels in changes.items():
        if not channels:
            continue
        row = NotificationPreference.objects.select_for_update().filter(user=user, kind=kind).first()
        if row is None:
            row = NotificationPreference(user=user, kind=kind, **DEFAULT_CHANNELS[Kind(kind)])
        for channel in ("in_app", "email"):
            if channel in channels:
                setattr(row, channel, bool(channels[channel]))
        row.save()


def unsubscribe_token(*, user_id, kind):
    return signing.dumps({"u": user_id, "k": kind}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_url(*, user_id, kind):
    path = reverse("notification-unsubscribe", kwargs={"token": unsubscribe_token(user_id=user_id, kind=kind)})
    return conf.site_url() + path


@transaction.atomic
def unsubscribe_by_token(*, token):
    """Turn off the email channel named by a signed token. Returns the kind."""
    try:
        payload = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        user_id, kind = int(payload["u"]), str(payload["k"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise ApplicationError("This unsubscribe link is invalid.", fields={"token": "Invalid or altered link."},
                               code="invalid_token")
    if kind not in Kind.values:
        raise ApplicationError("This unsubscribe link is invalid.", fields={"token": "Unknown kind."},
                               code="invalid_token")
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound("This account no longer exists.", code="not_found")
    preferences_update(user=user, changes={kind: {"email": False}})
    return kind


# --- email -----------------------------------------------------------------
class EmailRetry(Exception):
    """A transient delivery failure; the row is pending again and the task should retry after `countdown`."""

    def __init__(self, countdown, error):
        super().__init__(error)
        self.countdown = countdown


_ADDRESS_RE = re.compile(r"[^\s<>\"',;:()]+@[^\s<>\"',;:()]+")


def _short_error(exc):
    """Class name and a short message, with anything that looks like an address removed."""
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        detail = "recipient refused"
    elif isinstance(exc, OSError) and exc.strerror:
        detail = exc.strerror
    else:
        detail = str(exc)
    detail = _ADDRESS_RE.sub("<address>", " ".join(detail.split()))
    return f"{type(exc).__name__}: {detail}"[:300]


def retry_countdown(attempts):
    """Exponential backoff with jitter, never above MAX_COUNTDOWN_SECONDS."""
    cap = settings.MAX_COUNTDOWN_SECONDS
    base = conf.email_retry_base_seconds() * (2 ** max(attempts - 1, 0))
    return min(cap, base + random.uniform(0, base / 2))


def email_message(notification):
    """The EmailMultiAlternatives for a notification (text + HTML, List-Unsubscribe, stable Message-ID)."""
    recipient = notification.recipient
    unsubscribe = unsubscribe_url(user_id=recipient.pk, kind=notification.kind)
    task = notification.task
    context = {
        "notification": notification,
        "recipient_name": _display_name(recipient),
        "actor_name": _display_name(notification.actor) if notification.actor_id else "",
        "task": task,
        "project_name": task.project.name if task is not None else "",
        "task_url": f"{conf.site_url()}/api/v1/tasks/{task.pk}/" if task is not None else "",
        "comment_excerpt": (notification.comment.body[:300] if notification.comment_id else ""),
        "data": notification.data,
        "unsubscribe_url": unsubscribe,
        "preferences_url": f"{conf.site_url()}/api/v1/me/notification-preferences/",
        "site_url": conf.site_url(),
    }
    template = f"notifications/{notification.kind}"
    message = EmailMultiAlternatives(
        subject=" ".join(f"[taskmgmt] {notification.text}".split())[:180],
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient.email],
        headers={
            "Message-ID": f"<notification-{notification.pk}@{conf.message_id_domain()}>",
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message


class DeliveredButUnrecorded(Exception):
    """The email went out but the database failed before the row said so (e.g. a PostgreSQL restart)."""


def _claim(notification_id, now, token):
    stale = now - timedelta(seconds=conf.email_stale_sending_seconds())
    claimable = Q(email_state=EmailState.PENDING) | Q(email_state=EmailState.SENDING, email_claimed_at__lt=stale)
    if token:
        claimable |= Q(email_state=EmailState.SENDING, email_claim_token=token)
    return Notification.objects.filter(pk=notification_id).filter(claimable).update(
        email_state=EmailState.SENDING, email_claimed_at=now, email_claim_token=token or "",
        email_attempts=F("email_attempts") + 1,
    )


def _finish(notification_id, state, *, error="", **extra):
    Notification.objects.filter(pk=notification_id, email_state=EmailState.SENDING).update(
        email_state=state, email_last_error=error, email_claimed_at=None, email_claim_token="", **extra
    )


def notification_email_deliver(*, notification_id, claim_token=None, already_sent=False):
    """Send the email of one notification at most once. Returns a small dict; raises EmailRetry on transient errors.

    The row is claimed (pending -> sending, one conditional UPDATE) before anything is sent, so a
    redelivered or duplicated message finds nothing to do. `claim_token` (the Celery task id, which
    retries keep) lets a retry after a database error take back its own claim. `already_sent` is
    set by the retry of a delivery whose email went out but whose row could not be updated: it only
    records the send.
    """
    now = timezone.now()
    if already_sent:
        Notification.objects.filter(pk=notification_id, email_state=EmailState.SENDING,
                                    email_claim_token=claim_token or "").update(
            email_state=EmailState.SENT, email_sent_at=now, email_claimed_at=None, email_claim_token="")
        return {"notification": notification_id, "outcome": EmailState.SENT, "recorded_after_retry": True}
    if not _claim(notification_id, now, claim_token):
        state = Notification.objects.filter(pk=notification_id).values_list("email_state", flat=True).first()
        return {"notification": notification_id, "outcome": "nothing_to_do", "state": state}
    notification = Notification.objects.select_related(
        "recipient", "actor", "task__project", "comment").get(pk=notification_id)
    recipient = notification.recipient
    if not recipient.email or not recipient.is_active:
        _finish(notification_id, EmailState.SKIPPED, error="recipient has no usable email address")
        return {"notification": notification_id, "outcome": EmailState.SKIPPED}
    try:
        email_message(notification).send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:  # the server will not take it however often we ask
        _finish(notification_id, EmailState.FAILED, error=_short_error(exc))
        logger.warning("notification %s email refused", notification_id)
        return {"notification": notification_id, "outcome": EmailState.FAILED, "attempts": notification.email_attempts}
    except (smtplib.SMTPException, OSError) as exc:
        error = _short_error(exc)
        if notification.email_attempts >= conf.email_max_attempts():
            _finish(notification_id, EmailState.FAILED, error=error)
            logger.warning("notification %s email failed after %d attempts: %s",
                           notification_id, notification.email_attempts, error)
            return {"notification": notification_id, "outcome": EmailState.FAILED,
                    "attempts": notification.email_attempts}
        # The retry is a re-publish: stamp enqueued_at so the sweep leaves it to the retry.
        _finish(notification_id, EmailState.PENDING, error=error, enqueued_at=timezone.now())
        raise EmailRetry(retry_countdown(notification.email_attempts), error) from exc
    try:
        _finish(notification_id, EmailState.SENT, email_sent_at=timezone.now())
    except DatabaseError as exc:
        raise DeliveredButUnrecorded() from exc
    return {"notification": notification_id, "outcome": EmailState.SENT, "attempts": notification.email_attempts}


# --- cleanup ---------------------------------------------------------------
def _delete_in_batches(queryset, batch):
    deleted = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += Notification.objects.filter(pk__in=ids).delete()[0]


def notifications_cleanup(*, now=None, batch=None):
    """Delete read notifications past the read retention and every notification past the hard limit.

    Email-only records (show_in_app=False) count as read once their email is no longer pending.
    """
    now = now or timezone.now()
    batch = batch or conf.cleanup_batch_size()
    read_cutoff = now - timedelta(days=conf.read_retention_days())
    hard_cutoff = now - timedelta(days=conf.hard_retention_days())
    expired = _delete_in_batches(Notification.objects.filter(created_at__lt=hard_cutoff), batch)
    read = _delete_in_batches(
        Notification.objects.filter(created_at__lt=read_cutoff).filter(
            Q(read_at__isnull=False) | Q(show_in_app=False)
        ).exclude(email_state__in=[EmailState.PENDING, EmailState.SENDING]),
        batch,
    )
    return {"read": read, "expired": expired}


class NotificationService:
    """The spec's NotificationService names, over the module functions."""

    notify_task_assigned = staticmethod(notify_task_assigned)
    notify_comment_mention = staticmethod(notify_comment_mention)
    process_pending_reminders = staticmethod(process_pending_reminders)
    notification_create = staticmethod(notification_create)
