"""Queue `default`: periodic upkeep of the tasks domain (event-log retention, board rank rebalancing)."""

from celery import shared_task

from tasks_app.services.events import events_cleanup
from tasks_app.services.positions import positions_rebalance


@shared_task(name="tasks.cleanup_old_events")
def cleanup_old_events():
    """Delete event-log rows past EVENT_RETENTION_DAYS (idempotent)."""
    return {"deleted": events_cleanup()}


@shared_task(name="tasks.rebalance_positions")
def rebalance_positions(project_id, status):
    """Re-space one board column's ranks once they have grown long (idempotent)."""
    return {"changed": positions_rebalance(project_id=project_id, status=status)}
