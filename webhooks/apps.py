from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        from django.db.models import Q
        from django.utils import timezone

        from core import liveness, outbox
        from webhooks import conf, events
        from webhooks.models import DeliveryState, WebhookDelivery

        events.connect()
        # First attempts whose message never arrived; retries are re-queued by retry_failed_webhooks.
        # A row under a live lease is being sent (or its worker died): re-publishing it before the lease
        # lapses only queues messages that claim nothing.
        outbox.register(
            name="webhooks.delivery",
            queryset=lambda: WebhookDelivery.objects.filter(
                Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now()), state=DeliveryState.PENDING, attempts=0
            ),
            task_name="webhooks.deliver_webhook",
            args=lambda rows: [[row.pk for row in rows]],
            batch=lambda: conf.WEBHOOK_BATCH_SIZE,
            # Claimed by a worker declared dead (core/liveness.py), first attempt or retry: at once.
            orphaned=lambda dead_holders: WebhookDelivery.objects.filter(
                liveness.dead_claims_q("claim_token", dead_holders), state=DeliveryState.PENDING
            ),
        )
