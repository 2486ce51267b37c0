"""Thin tasks: ids in, small dicts of counts out. Secrets and bodies never travel in messages."""

from celery import shared_task

from webhooks import delivery, services


@shared_task(name="webhooks.deliver_webhook")
def deliver_webhook(delivery_ids):
    """One attempt for each of the given deliveries (a batch, sent concurrently). Idempotent: rows are
    claimed with a lease, so a duplicate message finds nothing left to send."""
    if isinstance(delivery_ids, int):
        delivery_ids = [delivery_ids]
    return delivery.deliver_batch(delivery_ids=list(delivery_ids))


@shared_task(name="webhooks.retry_failed_webhooks")
def retry_failed_webhooks():
    return {"queued": delivery.retry_due()}


@shared_task(name="webhooks.cleanup_old_webhook_deliveries")
def cleanup_old_webhook_deliveries():
    return {"deleted": services.cleanup_old_deliveries()}
