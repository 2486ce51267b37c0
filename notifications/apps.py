from datetime import timedelta

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from django.db.models import Q
        from django.utils import timezone

        from core import liveness, outbox
        from notifications import conf, receivers
        from notifications.models import EmailState, Notification
        from tasks_app import signals

        signals.task_assigned.connect(receivers.on_task_assigned, dispatch_uid="notifications.task_assigned")
        signals.comment_created.connect(receivers.on_comment_created, dispatch_uid="notifications.comment_created")
        signals.comment_updated.connect(receivers.on_comment_updated, dispatch_uid="notifications.comment_updated")

        def stuck_emails():
            # Pending rows, and rows whose claiming worker vanished long ago.
            stale = timezone.now() - timedelta(seconds=conf.NOTIFICATIONS_EMAIL_STALE_SENDING_SECONDS)
            return Notification.objects.filter(
                Q(email_state=EmailState.PENDING) | Q(email_state=EmailState.SENDING, email_claimed_at__lt=stale)
            )

        def orphaned_emails(dead_holders):
            # Claimed by a worker declared dead (core/liveness.py): re-published whatever their age.
            return Notification.objects.filter(
                Q(email_state=EmailState.SENDING) & liveness.dead_claims_q("email_claim_token", dead_holders)
            )

        outbox.register(
            name="notifications.email",
            queryset=stuck_emails,
            task_name="notifications.send_email_notification",
            # Up to NOTIFICATIONS_EMAIL_BATCH_SIZE ids per message, as services._enqueue_emails chunks them:
            # the task claims each row (a batch re-published twice sends each email once).
            args=lambda rows: [[row.pk for row in rows]],
            batch=lambda: conf.NOTIFICATIONS_EMAIL_BATCH_SIZE,
            orphaned=orphaned_emails,
        )
