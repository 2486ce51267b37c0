from django.apps import AppConfig


class RemindersConfig(AppConfig):
    name = "reminders"
    verbose_name = "Reminders and summaries"

    def ready(self):
        from django.utils import timezone

        from core import outbox
        from reminders import receivers
        from reminders.models import Reminder
        from reminders.services import SEND_TASK
        from tasks_app import signals

        # Sent by task_update inside its transaction: relative reminders move with the due date, and
        # default-recipient reminders follow the assignee, committed (or rolled back) with the task.
        signals.task_updated.connect(receivers.on_task_updated, dispatch_uid="reminders.task_updated")

        # Claimed but unsent: its message may be lost (broker down after the claim committed, a worker
        # killed with it prefetched). Its first publish is the claim (`claimed_at`); the sweep
        # re-publishes it like any side-effect row, and the send's conditional UPDATE sends it once.
        # No `orphaned`: the send holds no claim beyond its own transaction, and a worker's death
        # already queues sweep(before=now), which re-publishes every claim made before it.
        outbox.register(
            name="reminders.send",
            queryset=lambda: Reminder.objects.filter(
                claimed_at__isnull=False, sent_at__isnull=True, fire_at__lte=timezone.now()
            ),
            task_name=SEND_TASK,
            published="claimed_at",
        )
