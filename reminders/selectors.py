"""Reads of reminders, always through a task the caller may see (tasks_app.selectors.task_get)."""

from django.db.models import F

from core.exceptions import NotFound
from reminders.models import Reminder


def reminder_list(*, task):
    # Disarmed reminders (relative, task without a due date) last, on every database.
    return (
        Reminder.objects.filter(task=task).select_related("recipient").order_by(F("fire_at").asc(nulls_last=True), "id")
    )


def reminder_get(*, task, reminder_id):
    reminder = reminder_list(task=task).filter(pk=reminder_id).first()
    if reminder is None:
        raise NotFound("Reminder not found.", code="not_found")
    return reminder
