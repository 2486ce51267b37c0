"""Flows for scripts/test_async_integration.py: assignment and mention emails through a running worker."""

import os
import uuid

from core.itest import flow, wait_for


def _setup(tag):
    from django.contrib.auth import get_user_model

    from tasks_app.models import Role
    from tasks_app.services.projects import membership_add, project_create
    from tasks_app.services.tasks import task_create

    suffix = uuid.uuid4().hex[:8]
    User = get_user_model()
    owner = User.objects.create_user(f"itest-{tag}-owner-{suffix}", email=f"itest-owner-{suffix}@example.invalid")
    member = User.objects.create_user(f"itest-{tag}-member-{suffix}", email=f"itest-member-{suffix}@example.invalid")
    project = project_create(actor=owner, name=f"itest-{tag}-{suffix}")
    membership_add(project=project, actor=owner, user=member, role=Role.MEMBER)
    task = task_create(actor=owner, project=project, title=f"itest {tag} task")
    return owner, member, project, task


def _cleanup(owner, member, project):
    if os.environ.get("ITEST_KEEP"):
        return
    project.delete()
    owner.delete()
    member.delete()  # its notifications go with it


def _wait_sent(notification, timeout):
    from notifications.models import Notification

    row = wait_for(
        lambda: Notification.objects.filter(pk=notification.pk, email_state__in=["sent", "failed"]).first(),
        timeout,
        f"notification {notification.pk} email to leave 'pending'",
    )
    assert row.email_state == "sent", f"email {row.email_state}: {row.email_last_error}"
    return row


@flow
def assignment_notification(timeout):
    from notifications.models import Notification
    from tasks_app.services.tasks import task_assign

    owner, member, project, task = _setup("assign")
    try:
        task_assign(task=task, actor=owner, assignee=member)
        notification = Notification.objects.get(recipient=member, kind="assigned", task=task)
        row = _wait_sent(notification, timeout)
        return f"notification {row.pk} emailed after {row.email_attempts} attempt(s)"
    finally:
        _cleanup(owner, member, project)


@flow
def mention_notification(timeout):
    from notifications.models import Notification
    from tasks_app.services.comments import comment_create

    owner, member, project, task = _setup("mention")
    try:
        comment = comment_create(
            task=task, actor=owner, body=f"@{member.username.upper()} and again @{member.username}"
        )
        rows = list(Notification.objects.filter(comment=comment, kind="mentioned"))
        assert [r.recipient_id for r in rows] == [member.pk], "exactly one mention notification for the member"
        row = _wait_sent(rows[0], timeout)
        return f"notification {row.pk} for comment {comment.pk} emailed"
    finally:
        _cleanup(owner, member, project)
