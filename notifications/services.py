"""Writes for notifications: creation (honouring preferences), read state, preferences, unsubscribe links, cleanup.

Email delivery (claiming, sending, recording) is in notifications.sending.

Creation happens inside the caller's transaction. The email is a state on the row ("pending") and the
message that delivers it (ids only) is published on commit; core.sweep_pending re-publishes rows that
stay pending (registered in apps.py).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from core.enqueue import enqueue_on_commit, enqueue_on_commit_coalesced
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
# The doorbell key of notification emails (core.enqueue.enqueue_on_commit_coalesced); sending.py answers it.
EMAIL_DOORBELL = "notifications.email"
UNSUBSCRIBE_SALT = "notifications.unsubscribe"


# --- creation --------------------------------------------------------------
def _validate_kind(kind):
    if kind not in Kind.values:
        raise ApplicationError(f"Unknown notification kind {kind!r}.", fields={"kind": "Unknown kind."})


def _notification_write(
    *, recipient, kind, text, actor=None, task=None, comment=None, data=None, email_task=EMAIL_TASK, enqueue=True
):
    _validate_kind(kind)
    channels = preference_for(user=recipient, kind=kind)
    if not channels["in_app"] and not channels["email"]:
        return None
    notification = Notification.objects.create(
        recipient=recipient,
        kind=kind,
        text=text[:500],
        actor=actor,
        task=task,
        comment=comment,
        data=data or {},
        show_in_app=channels["in_app"],
        email_state=EmailState.PENDING if channels["email"] else EmailState.SKIPPED,
    )
    if channels["email"] and enqueue:
        # No linger on RabbitMQ: a countdown there goes through the delayed-delivery exchanges a worker declares,
        # which a web process may publish to before any worker has.
        linger = conf.NOTIFICATIONS_EMAIL_LINGER_SECONDS if conf.NOTIFICATIONS_EMAIL_COALESCE_SECONDS else 0
        linger = 0 if settings.BROKER_IS_AMQP else linger
        enqueue_on_commit_coalesced(
            email_task,
            args=[notification.pk],
            key=EMAIL_DOORBELL,
            seconds=conf.NOTIFICATIONS_EMAIL_COALESCE_SECONDS,
            **({"countdown": linger} if linger else {}),
        )
    return notification


def _enqueue_emails(notifications, email_task):
    """One message per NOTIFICATIONS_EMAIL_BATCH_SIZE pending emails, published on commit."""
    ids = [n.pk for n in notifications if n.email_state == EmailState.PENDING]
    size = conf.NOTIFICATIONS_EMAIL_BATCH_SIZE
    for i in range(0, len(ids), size):
        chunk = ids[i : i + size]
        enqueue_on_commit(email_task, args=[chunk[0] if len(chunk) == 1 else chunk])


@transaction.atomic(savepoint=False)  # inside a caller's transaction: no SAVEPOINT round trips
def notification_create(*, recipient, kind, text, actor=None, task=None, comment=None, data=None):
    """Write one notification in the caller's transaction. None when the user turned both channels off.

    With the email channel on, the row starts "pending" and notifications.send_email_notification(id)
    is published on commit; with it off, the row is "skipped". With only email on, the row is kept as
    the email record but hidden from the in-app list (show_in_app=False).
    """
    return _notification_write(
        recipient=recipient, kind=kind, text=text, actor=actor, task=task, comment=comment, data=data
    )


def _display_name(user):
    if user is None:
        return "Someone"
    return user.get_full_name() or user.get_username()


@transaction.atomic(savepoint=False)  # inside a caller's transaction: no SAVEPOINT round trips
def notify_task_assigned(*, task, actor=None):
    """Notify the new assignee unless they assigned themselves; queues send_task_assignment_notification."""
    if task.assignee_id is None or (actor is not None and task.assignee_id == actor.pk):
        return None
    return _notification_write(
        recipient=task.assignee,
        kind=Kind.ASSIGNED,
        actor=actor,
        task=task,
        text=f"{_display_name(actor)} assigned you to \u201c{task.title}\u201d",
        email_task=ASSIGNMENT_TASK,
    )


@transaction.atomic(savepoint=False)  # inside a caller's transaction: no SAVEPOINT round trips
def notify_comment_mention(*, comment, actor=None, previous_body=None):
    """Notify project members @mentioned in `comment` (on edit: only names not in `previous_body`).

    Never the author, at most one notification per user per comment. Queues
    send_comment_mention_notification with the ids of all of them (in batches). Returns the notifications
    written.
    """
    from tasks_app.models import Membership

    author_id = actor.pk if actor is not None else comment.author_id
    candidates = mention_candidates(comment.body)
    if not candidates:
        return []
    members = {
        m.user.get_username(): m.user
        for m in Membership.objects.filter(project_id=comment.task.project_id)
        .annotate(lname=Lower("user__username"))
        .filter(lname__in=candidates)
        .select_related("user")
    }
    mentioned = resolve_mentions(comment.body, members)
    if previous_body is not None:
        mentioned -= resolve_mentions(previous_body, members)
    recipients = [members[name] for name in sorted(mentioned) if members[name].pk != author_id]
    if not recipients:
        return []
    already = set(
        Notification.objects.filter(comment=comment, kind=Kind.MENTIONED, recipient__in=recipients).values_list(
            "recipient_id", flat=True
        )
    )
    written = []
    for user in recipients:
        if user.pk in already:
            continue
        try:
            with transaction.atomic():  # a concurrent edit may have notified them first (unique constraint)
                notification = _notification_write(
                    recipient=user,
                    kind=Kind.MENTIONED,
                    actor=actor,
                    task=comment.task,
                    comment=comment,
                    text=f"{_display_name(actor)} mentioned you on \u201c{comment.task.title}\u201d",
                    email_task=MENTION_TASK,
                    enqueue=False,
                )
        except IntegrityError:
            continue
        if notification is not None:
            written.append(notification)
    _enqueue_emails(written, MENTION_TASK)
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
        raise ApplicationError(
            "Unknown notification kinds.", fields=dict.fromkeys(unknown, "Unknown notification kind.")
        )
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


def _site_url():
    return conf.SITE_URL.rstrip("/")


def _message_id_domain():
    return conf.NOTIFICATIONS_MESSAGE_ID_DOMAIN or (
        _site_url().split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
    )


def unsubscribe_token(*, user_id, kind):
    return signing.dumps({"u": user_id, "k": kind}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_url(*, user_id, kind):
    """The HTML page of RFC 8058: GET confirms, POST (one click) unsubscribes. Same URL in List-Unsubscribe."""
    path = reverse("notification-unsubscribe", kwargs={"token": unsubscribe_token(user_id=user_id, kind=kind)})
    return _site_url() + path


def task_url(*, task):
    """Where "open the task" points: NOTIFICATIONS_TASK_URL, a template for the deployer's front end."""
    return conf.NOTIFICATIONS_TASK_URL.format(site_url=_site_url(), task_id=task.pk, project_id=task.project_id)


def preferences_url():
    return conf.NOTIFICATIONS_PREFERENCES_URL.format(site_url=_site_url())


def unsubscribe_token_read(*, token):
    """(user, kind) named by a valid token; ApplicationError (400) or NotFound (404) otherwise. Changes nothing."""
    try:
        payload = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        user_id, kind = int(payload["u"]), str(payload["k"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise ApplicationError(
            "This unsubscribe link is invalid.", fields={"token": "Invalid or altered link."}, code="invalid_token"
        )
    if kind not in Kind.values:
        raise ApplicationError(
            "This unsubscribe link is invalid.", fields={"token": "Unknown kind."}, code="invalid_token"
        )
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound("This account no longer exists.", code="not_found")
    return user, kind


@transaction.atomic
def unsubscribe_by_token(*, token):
    """Turn off the email channel named by a signed token. Returns the kind."""
    user, kind = unsubscribe_token_read(token=token)
    preferences_update(user=user, changes={kind: {"email": False}})
    return kind


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
    batch = batch or conf.NOTIFICATIONS_CLEANUP_BATCH
    read_cutoff = now - timedelta(days=conf.NOTIFICATIONS_READ_RETENTION_DAYS)
    hard_cutoff = now - timedelta(days=conf.NOTIFICATIONS_HARD_RETENTION_DAYS)
    expired = _delete_in_batches(Notification.objects.filter(created_at__lt=hard_cutoff), batch)
    read = _delete_in_batches(
        Notification.objects.filter(created_at__lt=read_cutoff)
        .filter(Q(read_at__isnull=False) | Q(show_in_app=False))
        .exclude(email_state__in=[EmailState.PENDING, EmailState.SENDING]),
        batch,
    )
    return {"read": read, "expired": expired}


class NotificationService:
    """The spec's NotificationService names, over the module functions."""

    notify_task_assigned = staticmethod(notify_task_assigned)
    notify_comment_mention = staticmethod(notify_comment_mention)
    process_pending_reminders = staticmethod(process_pending_reminders)
