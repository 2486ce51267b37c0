"""Periodic task admin: every registered task name in "Task (registered)" (the seeded rows select theirs),
and a "Run now" action publishing to the row's own queue."""

import json

from django.contrib import admin, messages
from django_celery_beat.admin import PeriodicTaskAdmin as BasePeriodicTaskAdmin
from django_celery_beat.admin import PeriodicTaskForm as BasePeriodicTaskForm
from django_celery_beat.models import PeriodicTask

from core.enqueue import publish_now_rollback_unsafe


def registered_task_names():
    """Every task name of the Celery app, with the tasks modules imported (the web process does not import
    them otherwise, which left django-celery-beat's "Task (registered)" list empty)."""
    from taskmgmt.celery import app

    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if not name.startswith("celery."))


class PeriodicTaskForm(BasePeriodicTaskForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = registered_task_names()
        self.fields["regtask"].widget._choices = (("", ""), *((n, n) for n in names))
        task = self.instance.task if self.instance and self.instance.pk else None
        if task in names and not self.is_bound:
            self.initial["regtask"] = task  # a seeded row selects its task ...
            self.initial["task"] = ""  # ... and "Task (custom)" stays for names not registered


class PeriodicTaskAdmin(BasePeriodicTaskAdmin):
    form = PeriodicTaskForm
    actions = [*BasePeriodicTaskAdmin.actions, "run_now"]

    @admin.action(description="Run now")
    def run_now(self, request, queryset):
        sent, failed = [], []
        for task in queryset:
            ok = publish_now_rollback_unsafe(
                task.task,
                args=json.loads(task.args or "[]"),
                kwargs=json.loads(task.kwargs or "{}"),
                queue=task.queue or None,
                headers={"periodic_task_name": task.name},
            )
            (sent if ok else failed).append(task.name)
        if sent:
            self.message_user(request, f"Queued now: {', '.join(sent)}", messages.SUCCESS)
        if failed:
            self.message_user(request, f"Broker unreachable, not queued: {', '.join(failed)}", messages.ERROR)


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, PeriodicTaskAdmin)
