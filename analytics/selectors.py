"""Reads, scoped to the requester."""

from analytics.models import AnalyticsSnapshot, ExportJob
from core.exceptions import NotFound


def snapshot_get(*, scope, target_id):
    return AnalyticsSnapshot.objects.filter(scope=scope, **{f"{scope}_id": target_id}).first()


def export_list(*, user):
    """A user sees only the exports they requested (staff included: files hold what the requester could see)."""
    return ExportJob.objects.filter(requester=user).order_by("-created_at", "-id")


def export_get(*, user, export_id):
    job = export_list(user=user).filter(pk=export_id).first()
    if job is None:
        raise NotFound("Export not found.", code="not_found")
    return job
