from celery import shared_task

from core import outbox


@shared_task(name="core.ping")
def ping(payload=None):
    """Round-trip check used by scripts/test_celery.py and tests. `payload` is ignored (tests pass
    sensitive-looking values to prove they are masked in stored results)."""
    return "pong"


@shared_task(name="core.sweep_pending")
def sweep_pending(before=None):
    """Re-publish side-effect rows that stayed pending too long (broker outage, lost message), and rows
    claimed by dead workers. `before` (Unix time): every pending row last published before then, at once
    (published when the broker comes back or a worker dies: core/outbox.py)."""
    return outbox.sweep(before=before)


@shared_task(name="core.cleanup_idempotency_keys")
def cleanup_idempotency_keys():
    """Delete Idempotency-Key records whose replay window has passed."""
    from core.idempotency import idempotency_cleanup

    return idempotency_cleanup()
