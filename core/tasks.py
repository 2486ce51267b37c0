from celery import shared_task

from core import outbox


@shared_task(name="core.ping")
def ping():
    """Round-trip check used by /healthz and scripts/test_celery.py."""
    return "pong"


@shared_task(name="core.sweep_pending")
def sweep_pending():
    """Re-publish side-effect rows that stayed pending too long (broker outage, lost message)."""
    return outbox.sweep()
