from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        from core import outbox
        from webhooks import events
        from webhooks.models import DeliveryState, WebhookDelivery

        events.connect()
        # First attempts whose message never arrived; retries are re-queued by retry_failed_webhooks.
        outbox.register(
            name="webhooks.delivery",
            queryset=lambda: WebhookDelivery.objects.filter(state=DeliveryState.PENDING, attempts=0),
            task_name="webhooks.deliver_webhook",
            args=lambda row: [[row.pk]],
        )
