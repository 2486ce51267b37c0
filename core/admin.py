"""A "Run now" action on periodic tasks, publishing to the row's own queue."""

import json

from django.contrib import admin, messages
from django_celery_beat.admin import PeriodicTaskAdmin as BasePeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from core.enqueue import publish_now_rollback_unsafe


class PeriodicTaskAdmin(BasePeriodicTaskAdmin):
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
