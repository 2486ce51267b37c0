"""Existing databases keep their reminders: migrate from the schema before the move, with rows in it.

Rows are written through the historical models of tasks_app 0004 (Reminder and SummaryDelivery still
in tasks_app), then the database is migrated forward and the same rows are read through reminders.models.
"""

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from reminders.models import Reminder, ReminderOutcome, SummaryDelivery, SummaryKind

BEFORE_MOVE = [("tasks_app", "0004_profile_local_morning_index")]


def _migrate(targets):
    MigrationExecutor(connection).migrate(targets)
    loader = MigrationExecutor(connection).loader  # reloaded: what is applied now
    return loader.project_state(list(loader.applied_migrations)).apps


@pytest.mark.django_db(transaction=True)
def test_migrating_from_the_pre_move_schema_keeps_reminders_summaries_and_their_permissions():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old = _migrate(BEFORE_MOVE)
    try:
        assert not any(m._meta.app_label == "reminders" for m in old.get_models())
        User = old.get_model("auth", "User")
        Project, Task = old.get_model("tasks_app", "Project"), old.get_model("tasks_app", "Task")
        OldReminder = old.get_model("tasks_app", "Reminder")
        OldSummaryDelivery = old.get_model("tasks_app", "SummaryDelivery")
        OldContentType = old.get_model("contenttypes", "ContentType")
        OldPermission = old.get_model("auth", "Permission")

        # The database as it was: reminder content types (and permissions) under tasks_app (migrating
        # back moved an existing reminders.reminder type there).
        assert not OldContentType.objects.filter(app_label="reminders").exists()
        reminder_type, _ = OldContentType.objects.get_or_create(app_label="tasks_app", model="reminder")
        permission = OldPermission.objects.create(
            content_type=reminder_type, codename="view_reminder_legacy", name="legacy"
        )
        user = User.objects.create(username="migrated")
        user.user_permissions.add(permission)
        project = Project.objects.create(name="p", owner=user)
        due = timezone.now() + timedelta(days=2)
        task = Task.objects.create(project=project, title="t", due_at=due)
        relative = OldReminder.objects.create(
            task=task,
            recipient=user,
            follows_assignee=True,
            offset=timedelta(hours=-1),
            fire_at=due - timedelta(hours=1),
        )
        sent = OldReminder.objects.create(
            task=task, recipient=user, remind_at=due - timedelta(days=1), fire_at=due - timedelta(days=1), note="n"
        )
        OldReminder.objects.filter(pk=sent.pk).update(sent_at=timezone.now(), outcome="sent")
        OldSummaryDelivery.objects.create(user=user, kind="daily_summary", period_key="2026-11-27", notification_id=7)
        OldSummaryDelivery.objects.create(user=user, kind="weekly_report", period_key="2026-W47", outcome="empty")
    finally:
        _migrate(latest)
    ContentType.objects.clear_cache()

    rows = list(Reminder.objects.filter(task_id=task.pk).order_by("pk"))
    assert [(r.pk, r.recipient_id, r.offset, r.remind_at, r.note) for r in rows] == [
        (relative.pk, user.pk, timedelta(hours=-1), None, ""),
        (sent.pk, user.pk, None, sent.remind_at, "n"),
    ]
    assert rows[0].follows_assignee and rows[0].sent_at is None and rows[0].outcome == ReminderOutcome.PENDING
    assert rows[1].sent_at is not None and rows[1].outcome == ReminderOutcome.SENT
    assert sorted(SummaryDelivery.objects.filter(user_id=user.pk).values_list("kind", "period_key", "outcome")) == [
        (SummaryKind.DAILY, "2026-11-27", "sent"),
        (SummaryKind.WEEKLY, "2026-W47", "empty"),
    ]
    # The content type moved with the model: same row, so the permission granted on it still holds.
    moved = ContentType.objects.get_for_model(Reminder)
    assert moved.pk == reminder_type.pk
    assert not ContentType.objects.filter(app_label="tasks_app", model="reminder").exists()
    assert user.user_permissions.get().content_type_id == moved.pk
    # The constraints kept by the tables still hold under the new app.
    Reminder.objects.filter(pk=relative.pk).delete()
    assert Reminder.objects.filter(task_id=task.pk).count() == 1
