from celery import shared_task

from core import outbox


@shared_task(name="core.ping")
def ping(payload=None):
    """Round-trip check used by scripts/test_celery.py and tests. `payload` is ignored (tests pass
    sensitive-looking values to prove they are masked in stored results)."""
    return "pong"


@shared_task(name="core.sweep_pending")
def sweep_pending():
    """Re-publish side-effect rows that stayed pending too long (broker outage, lost message)."""
    return outbox.sweep()
