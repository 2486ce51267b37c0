"""Email delivery of notifications: rendering, claiming rows, sending over SMTP, recording outcomes.

A notification's email is a state on its row ("pending"); the delivery claims the row with a
conditional UPDATE before sending, so a redelivered or duplicated message finds nothing to do.
Creation, read state, preferences and unsubscribe links are in notifications.services.
"""

import functools
import logging
import random
import re
import smtplib
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.template.loader import get_template
from django.utils import timezone

from core import liveness
from core.enqueue import coalesce_answer, publish_now_rollback_unsafe
from notifications import conf
from notifications.models import EmailState, Notification
from notifications.selectors import notification_email_state
from notifications.services import (
    EMAIL_DOORBELL,
    EMAIL_TASK,
    _display_name,
    _message_id_domain,
    _site_url,
    preferences_url,
    task_url,
    unsubscribe_url,
)

logger = logging.getLogger(__name__)


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
    base = conf.NOTIFICATIONS_EMAIL_RETRY_BASE_SECONDS * (2 ** max(attempts - 1, 0))
    return min(cap, base + random.uniform(0, base / 2))


@functools.lru_cache(maxsize=64)
def _compiled(name):
    """A template compiled once per process (get_template parses the file; rendering reuses the tree)."""
    return get_template(name)


def email_message(notification, *, connection=None):
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
        "task_url": task_url(task=task) if task is not None else "",
        "comment_excerpt": (notification.comment.body[:300] if notification.comment_id else ""),
        "data": notification.data,
        "unsubscribe_url": unsubscribe,
        "preferences_url": preferences_url(),
        "site_url": _site_url(),
    }
    template = f"notifications/{notification.kind}"
    message = EmailMultiAlternatives(
        subject=" ".join(f"[taskmgmt] {notification.text}".split())[:180],
        body=_compiled(f"{template}.txt").render(context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient.email],
        connection=connection,
        headers={
            "Message-ID": f"<notification-{notification.pk}@{_message_id_domain()}>",
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(_compiled(f"{template}.html").render(context), "text/html")
    return message


class DeliveredButUnrecorded(Exception):
    """The emails went out but the database failed before the rows said so (e.g. a PostgreSQL restart).

    `sent_ids` are the notifications whose email left; the retry (same task id, so the same claim token)
    only records those, and sends the rest of its batch, which it still holds under its claim."""

    def __init__(self, sent_ids=()):
        super().__init__(f"{len(sent_ids)} sent emails not recorded")
        self.sent_ids = list(sent_ids)


# --- claim conditions (one place; a claim is a conditional UPDATE, so two workers never both send) ---
def _own_claim(token):
    # The stored token is "<holder>.<task id>" (core/liveness.py); a retry may run in another process.
    return Q(email_claim_token=token) | Q(email_claim_token__endswith=f"{liveness.SEPARATOR}{token}")


def claimable(*, now, token=None):
    """Rows a delivery may claim: pending; "sending" under a claim whose holder (worker process) is dead
    (core/liveness.py: retaken at once; a live worker's claim is never taken); "sending" under a claim
    older than NOTIFICATIONS_EMAIL_STALE_SENDING_SECONDS (the backstop when liveness is unknown); or
    "sending" under this task's own claim (its retry after a database error)."""
    stale = now - timedelta(seconds=conf.NOTIFICATIONS_EMAIL_STALE_SENDING_SECONDS)
    condition = Q(email_state=EmailState.PENDING) | Q(email_state=EmailState.SENDING, email_claimed_at__lt=stale)
    condition |= Q(email_state=EmailState.SENDING) & liveness.dead_claims_q("email_claim_token")
    if token:
        condition |= Q(email_state=EmailState.SENDING) & _own_claim(token)
    return condition


def drainable():
    """Other rows a batch may take along: pending and never attempted (rows waiting out a retry backoff
    stay with their own retry). Their own messages then find nothing to do."""
    return Q(email_state=EmailState.PENDING, email_attempts=0)


def _claim_values(now, token):
    return {
        "email_state": EmailState.SENDING,
        "email_claimed_at": now,
        "email_claim_token": liveness.claim_token(token),
        "email_attempts": F("email_attempts") + 1,
    }


def _claim_batch(notification_ids, *, now, token, fill_to=0, fill_always=False):
    """Claim the given rows in one conditional UPDATE; when that claimed any (or `fill_always`) and `fill_to`
    leaves room, take along other drainable rows (oldest first, skipping rows another batch is claiming) in
    a second one. Without `fill_always`, a message whose rows were already taken by another batch costs one
    UPDATE. Returns the claimed rows, loaded with what rendering needs."""
    claimed = 0
    if notification_ids:
        claimed = Notification.objects.filter(claimable(now=now, token=token), pk__in=list(notification_ids)).update(
            **_claim_values(now, token)
        )
    if not claimed and not fill_always:
        return []
    extra = fill_to - claimed
    if extra > 0:
        others = Notification.objects.filter(drainable()).order_by("created_at")
        if connection.vendor == "postgresql":  # concurrent batches take different rows instead of waiting
            others = others.select_for_update(skip_locked=True)
        with transaction.atomic():  # FOR UPDATE in the subquery needs a transaction
            Notification.objects.filter(pk__in=others.values("pk")[:extra]).update(**_claim_values(now, token))
    return list(
        Notification.objects.filter(_own_claim(token), email_state=EmailState.SENDING)
        .select_related("recipient", "actor", "task__project", "comment")
        .order_by("pk")
    )


def _send_all(rows):
    """Send each row's email over one SMTP connection. Returns {pk: None (sent) or the exception}.

    Each message goes alone through the open connection (send_messages([m])) so every outcome is known;
    after a failure other than a refused recipient the connection is reopened for the next one, and
    when it cannot be opened at all the rest of the batch gets that error."""
    outcomes = {}
    mail = get_connection(fail_silently=False)
    try:
        mail.open()
    except (smtplib.SMTPException, OSError) as exc:
        return dict.fromkeys((row.pk for row in rows), exc)
    try:
        for i, row in enumerate(rows):
            try:
                mail.send_messages([email_message(row, connection=mail)])
                outcomes[row.pk] = None
            except smtplib.SMTPRecipientsRefused as exc:
                outcomes[row.pk] = exc
            except (smtplib.SMTPException, OSError) as exc:
                outcomes[row.pk] = exc
                mail.close()
                try:
                    mail.open()
                except (smtplib.SMTPException, OSError) as again:
                    outcomes.update(dict.fromkeys((r.pk for r in rows[i + 1 :]), again))
                    return outcomes
    finally:
        mail.close()
    return outcomes


def _record_sent(ids, *, token, now):
    return Notification.objects.filter(_own_claim(token), pk__in=ids, email_state=EmailState.SENDING).update(
        email_state=EmailState.SENT, email_sent_at=now, email_last_error="", email_claimed_at=None, email_claim_token=""
    )


def _publish_next_batch():
    """A full batch was claimed under coalesced wake-ups: publish a message for the oldest row still waiting
    (its worker takes a batch along). If the publish fails, the rows wait for the sweep."""
    next_id = Notification.objects.filter(drainable()).order_by("created_at").values_list("pk", flat=True).first()
    if next_id is not None:
        publish_now_rollback_unsafe(EMAIL_TASK, args=[next_id])


def _finish(ids, state, *, token, error="", **extra):
    Notification.objects.filter(_own_claim(token), pk__in=ids, email_state=EmailState.SENDING).update(
        email_state=state, email_last_error=error, email_claimed_at=None, email_claim_token="", **extra
    )


def notification_emails_deliver(*, notification_ids, claim_token=None, already_sent=(), fill_to=None):
    """Send the emails of a batch of notifications, each at most once. Returns a report:

    {"sent": [...], "skipped": [...], "failed": [...], "retry": [...], "countdown": s, "nothing_to_do": [...]}

    The rows are claimed (pending -> sending, one conditional UPDATE, see `claimable`) before anything is
    sent, so a redelivered or duplicated message finds nothing to do. With `fill_to` the batch also takes
    never-attempted pending rows up to that many (`drainable`). `claim_token` (the Celery task id, which
    retries keep; a fresh one when None) lets a retry after a database error take back its own claim;
    `already_sent` lists rows of that batch whose email went out but whose row was not updated: they are
    only recorded. Transient SMTP errors put rows back to pending ("retry", with a capped backoff in
    "countdown"); raises DeliveredButUnrecorded when the final write fails after sending.
    """
    now = timezone.now()
    token = claim_token or uuid.uuid4().hex
    report = {"sent": [], "skipped": [], "failed": [], "retry": [], "countdown": 0, "nothing_to_do": []}
    if already_sent:
        _record_sent(list(already_sent), token=token, now=now)
        report["sent"] += list(already_sent)
        notification_ids = [pk for pk in notification_ids if pk not in set(already_sent)]
        fill_to = 0
    # Coalesced wake-ups (services.EMAIL_DOORBELL): answer the bell before looking for rows, so a notification
    # committed from now on publishes again, and take waiting rows even when this message's own row is gone (a
    # write that found the bell rung published nothing and counts on this batch).
    coalesced = bool(fill_to) and conf.NOTIFICATIONS_EMAIL_COALESCE_SECONDS > 0
    if coalesced:
        coalesce_answer(EMAIL_DOORBELL)
    rows = []
    if notification_ids or coalesced:
        rows = _claim_batch(notification_ids, now=now, token=token, fill_to=fill_to or 0, fill_always=coalesced)
    if coalesced and len(rows) >= fill_to:
        _publish_next_batch()  # more may wait: another worker takes them while this one sends
    claimed = {row.pk for row in rows}
    report["nothing_to_do"] = [pk for pk in notification_ids if pk not in claimed]

    sendable = []
    for row in rows:
        (sendable if row.recipient.email and row.recipient.is_active else report["skipped"]).append(row)
    if report["skipped"]:
        report["skipped"] = [row.pk for row in report["skipped"]]
        _finish(report["skipped"], EmailState.SKIPPED, token=token, error="recipient has no usable email address")
    outcomes = _send_all(sendable) if sendable else {}

    sent = [pk for pk, exc in outcomes.items() if exc is None]
    attempts = {row.pk: row.email_attempts for row in rows}
    try:
        with transaction.atomic():
            _record_sent(sent, token=token, now=timezone.now())
            for row in sendable:
                exc = outcomes[row.pk]
                if exc is None:
                    continue
                error = _short_error(exc)
                if (
                    isinstance(exc, smtplib.SMTPRecipientsRefused)
                    or row.email_attempts >= conf.NOTIFICATIONS_EMAIL_MAX_ATTEMPTS
                ):
                    _finish([row.pk], EmailState.FAILED, token=token, error=error)
                    report["failed"].append(row.pk)
                    logger.warning(
                        "notification %s email failed after %d attempts: %s", row.pk, row.email_attempts, error
                    )
                else:
                    # The retry is a re-publish: stamp enqueued_at so the sweep leaves it to the retry.
                    _finish([row.pk], EmailState.PENDING, token=token, error=error, enqueued_at=timezone.now())
                    report["retry"].append(row.pk)
                    report["countdown"] = max(report["countdown"], retry_countdown(row.email_attempts))
    except DatabaseError as exc:
        if sent:
            raise DeliveredButUnrecorded(sent) from exc
        raise
    report["sent"] += sent
    report["attempts"] = attempts
    report["errors"] = {pk: _short_error(exc) for pk, exc in outcomes.items() if exc is not None}
    return report


def notification_email_deliver(*, notification_id, claim_token=None, already_sent=False):
    """The email of one notification (notification_emails_deliver for one id, no draining).

    Returns {"notification", "outcome", ...}; raises EmailRetry on a transient error."""
    if already_sent:
        notification_emails_deliver(
            notification_ids=[notification_id], claim_token=claim_token, already_sent=[notification_id]
        )
        return {"notification": notification_id, "outcome": EmailState.SENT, "recorded_after_retry": True}
    report = notification_emails_deliver(notification_ids=[notification_id], claim_token=claim_token)
    attempts = report["attempts"].get(notification_id)
    if report["nothing_to_do"]:
        return {
            "notification": notification_id,
            "outcome": "nothing_to_do",
            "state": notification_email_state(notification_id=notification_id),
        }
    if report["skipped"]:
        return {"notification": notification_id, "outcome": EmailState.SKIPPED}
    if report["retry"]:
        raise EmailRetry(report["countdown"], report["errors"][notification_id])
    if report["failed"]:
        return {"notification": notification_id, "outcome": EmailState.FAILED, "attempts": attempts}
    return {"notification": notification_id, "outcome": EmailState.SENT, "attempts": attempts}
