"""Thin tasks on the `notifications` queue: load by id, call the service, retry on transient SMTP errors.

send_task_assignment_notification and send_comment_mention_notification deliver the email of an
assignment / mention notification (the in-app row already exists: it was written with the change).
send_email_notification does the same for any kind and is what the sweep re-publishes. All three take
one notification id or a list of them (a batch; NOTIFICATIONS_EMAIL_BATCH_SIZE at most) and are the
same idempotent delivery: rows are claimed before sending, so any of them, run twice, sends once. A
batch also takes along other never-attempted pending rows up to the batch size, so a burst of
one-notification messages is sent in batches over one SMTP connection each.
"""

from celery import shared_task

from notifications import conf, selectors, sending, services


def _outcome(report, pk):
    for key in ("sent", "skipped", "failed", "retry"):
        if pk in report[key]:
            return {"retry": "pending"}.get(key, key)
    return "nothing_to_do"


def _deliver(task, notification_id, already_sent):
    """`notification_id`: one id or a list. `already_sent`: True (the one id) or a list of ids whose email
    went out but whose row was not updated (the retry after DeliveredButUnrecorded)."""
    single = not isinstance(notification_id, (list, tuple))
    ids = [int(notification_id)] if single else [int(pk) for pk in notification_id]
    if already_sent is True:
        already_sent = ids
    try:
        report = sending.notification_emails_deliver(
            notification_ids=ids,
            claim_token=task.request.id,
            already_sent=list(already_sent or ()),
            fill_to=conf.NOTIFICATIONS_EMAIL_BATCH_SIZE,
        )
    except sending.DeliveredButUnrecorded as exc:
        # Sent, but the database dropped before the rows said so: the retry records those and sends the
        # rest of the batch (still claimed under this task id, which a retry keeps).
        raise task.retry(
            args=[ids + [pk for pk in exc.sent_ids if pk not in ids]],
            kwargs={"already_sent": exc.sent_ids},
            countdown=2,
            max_retries=None,
            exc=exc,
        )
    if report["retry"]:
        # Attempts are counted on the rows, so Celery's own retry limit is not used.
        raise task.retry(
            args=[report["retry"]], kwargs={}, countdown=report["countdown"], max_retries=None, exc=EmailRetryError()
        )
    counts = {key: len(report[key]) for key in ("sent", "skipped", "failed", "nothing_to_do")}
    if not single:
        return counts
    pk = ids[0]
    result = {"notification": pk, "outcome": _outcome(report, pk)}
    if pk in report["attempts"]:
        result["attempts"] = report["attempts"][pk]
    if result["outcome"] == "nothing_to_do":
        result["state"] = selectors.notification_email_state(notification_id=pk)
    if counts["sent"] + counts["skipped"] + counts["failed"] > (result["outcome"] != "nothing_to_do"):  # others too
        result["batch"] = counts
    return result


class EmailRetryError(Exception):
    """Some emails of the batch hit a transient SMTP error; they are pending again and retried."""


@shared_task(bind=True, name="notifications.send_task_assignment_notification")
def send_task_assignment_notification(self, notification_id, already_sent=False):
    return _deliver(self, notification_id, already_sent)


@shared_task(bind=True, name="notifications.send_comment_mention_notification")
def send_comment_mention_notification(self, notification_id, already_sent=False):
    return _deliver(self, notification_id, already_sent)


@shared_task(bind=True, name="notifications.send_email_notification")
def send_email_notification(self, notification_id, already_sent=False):
    return _deliver(self, notification_id, already_sent)


@shared_task(name="notifications.cleanup_expired_notifications")
def cleanup_expired_notifications():
    return services.notifications_cleanup()
