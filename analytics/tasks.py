"""Thin tasks: load by id, call the service, return a small dict of ids and counts."""

from celery import shared_task
from django.contrib.auth import get_user_model

from analytics import conf, services
from tasks_app.models import Project


@shared_task(name="analytics.compute_user_analytics")
def compute_user_analytics(user_id):
    if not get_user_model().objects.filter(pk=user_id).exists():
        return {"user": user_id, "computed": False}
    snapshot = services.analytics_user_refresh(user_id=user_id)
    return {"user": user_id, "computed": True, "snapshot": snapshot.pk}


@shared_task(name="analytics.compute_project_analytics")
def compute_project_analytics(project_id):
    if not Project.objects.filter(pk=project_id).exists():
        return {"project": project_id, "computed": False}
    snapshot = services.analytics_project_refresh(project_id=project_id)
    return {"project": project_id, "computed": True, "snapshot": snapshot.pk}


@shared_task(name="analytics.precompute_analytics")
def precompute_analytics():
    return services.analytics_precompute()


@shared_task(
    name="analytics.export_tasks_async",
    soft_time_limit=conf.ANALYTICS_EXPORT_SOFT_TIME_LIMIT,
    time_limit=conf.ANALYTICS_EXPORT_TIME_LIMIT,
)
def export_tasks_async(job_id):
    return services.export_run(job_id=job_id)
