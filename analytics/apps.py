from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self):
        from datetime import timedelta

        from django.db.models import Q
        from django.utils import timezone

        from analytics import conf
        from analytics.models import ExportJob, ExportStatus
        from core import outbox

        def pending_exports():
            # Pending jobs, and running ones whose worker died past the task's hard time limit.
            stale = timezone.now() - timedelta(seconds=conf.ANALYTICS_EXPORT_TIME_LIMIT)
            return ExportJob.objects.filter(
                Q(status=ExportStatus.PENDING) | Q(status=ExportStatus.RUNNING, started_at__lt=stale)
            )

        outbox.register(name="analytics.export", queryset=pending_exports, task_name="analytics.export_tasks_async")
