"""Flows for scripts/test_async_integration.py: a reminder swept and sent by the running worker."""

import os
import uuid
from datetime import timedelta

from core.itest import flow, wait_for


@flow
def reminder_sent_once(timeout):
    """A relative reminder comes due; the running worker's sweep claims it and the email goes out once."""
    import time

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from notifications.models import Notification
    from reminders.models import Reminder
    from reminders.services import reminder_create
    from taskmgmt.celery import app
    from tasks_app.models import Role
    from tasks_app.services.projects import membership_add, project_create
    from tasks_app.services.tasks import task_create, task_update

    suffix = uuid.uuid4().hex[:8]
    User = get_user_model()
    owner = User.objects.create_user(f"itest-reminder-owner-{suffix}")
    member = User.objects.create_user(f"itest-reminder-member-{suffix}", email=f"itest-member-{suffix}@example.invalid")
    project = project_create(actor=owner, name=f"itest-reminder-{suffix}")
    try:
        membership_add(project=project, actor=owner, user=member, role=Role.MEMBER)
        task = task_create(
            actor=owner,
            project=project,
            title="itest reminder",
            assignee=member,
            due_at=timezone.now() + timedelta(days=1),
        )
        reminder = reminder_create(task=task, actor=owner, offset=timedelta(hours=-1))
        # Moving the due date moves the reminder: it comes due two seconds from now.
        task_update(task=task, actor=owner, data={"due_at": timezone.now() + timedelta(hours=1, seconds=2)})
        reminder.refresh_from_db()
        assert reminder.recipient_id == member.pk and reminder.fire_at <= timezone.now() + timedelta(seconds=2)
        time.sleep(max(0.0, (reminder.fire_at - timezone.now()).total_seconds()) + 0.2)
        app.send_task("reminders.send_reminder_notifications").get(timeout=timeout)
        handled = wait_for(
            lambda: Reminder.objects.filter(pk=reminder.pk, sent_at__isnull=False).first(),
            timeout,
            "the reminder to be handled",
        )
        assert handled.outcome == "sent", handled.outcome
        notification = Notification.objects.get(kind="reminder", recipient=member)
        row = wait_for(
            lambda: Notification.objects.filter(pk=notification.pk, email_state__in=["sent", "failed"]).first(),
            timeout,
            "the reminder email",
        )
        assert row.email_state == "sent", f"email {row.email_state}: {row.email_last_error}"
        app.send_task("reminders.send_reminder_notifications").get(timeout=timeout)  # a second sweep: nothing new
        assert Notification.objects.filter(kind="reminder", recipient=member).count() == 1
        return f"reminder {reminder.pk}: moved with the due date, sent once (notification {notification.pk})"
    finally:
        if not os.environ.get("ITEST_KEEP"):
            project.delete()
            owner.delete()
            member.delete()
