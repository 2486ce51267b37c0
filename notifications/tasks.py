"""Thin tasks on the `notifications` queue: load by id, call the service, retry on transient SMTP errors.

send_task_assignment_notification and send_comment_mention_notification deliver the email of an
assignment / mention notification (the in-app row already exists: it was written with the change).
send_email_notification does the same for any kind and is what the sweep re-publishes. All three are
the same idempotent delivery: the row is claimed before sending, so any of them, run twice, sends once.
"""

from celery import shared_task

from notifications import services


def _deliver(task, notification_id, already_sent):
    try:
        return services.notification_email_deliver(notification_id=notification_id, claim_token=task.request.id,
                                                   already_sent=already_sent)
    except services.EmailRetry as exc:
        # Attempts are counted on the row, so Celery's own retry limit is not used.
        raise task.retry(countdown=exc.countdown, max_retries=None, exc=exc)
    except services.DeliveredButUnrecorded as exc:
        # Sent, but the database dropped before the row said so: the retry only records it.
        raise task.retry(kwargs={"notification_id": notification_id, "already_sent": True}, countdown=2,
                         max_retries=None, exc=exc)


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
