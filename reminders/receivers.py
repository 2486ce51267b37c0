"""Receivers of tasks_app's domain signals (connected in RemindersConfig.ready)."""

from reminders import services


def on_task_updated(sender, task, changes, **kwargs):
    services.reminders_follow_task(task=task, changes=changes)
