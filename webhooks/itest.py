"""Flow for scripts/test_async_integration.py: a task event delivered by the running worker to a local
receiver. With WEBHOOK_ALLOWED_NETWORKS empty (the default, also in the worker) the flow checks the
opposite: the worker refuses the 127.0.0.1 target and the receiver gets nothing."""

import os
import uuid

from core.itest import flow, wait_for


@flow
def webhook_delivery(timeout):
    from django.contrib.auth import get_user_model
    from standardwebhooks import Webhook

    from tasks_app.services.projects import project_create
    from tasks_app.services.tasks import task_create
    from tests.support import Receiver
    from webhooks import signing, ssrf
    from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

    suffix = uuid.uuid4().hex[:8]
    owner = get_user_model().objects.create_user(f"itest-webhook-owner-{suffix}")
    project = project_create(actor=owner, name=f"itest-webhook-{suffix}")
    receiver = Receiver()
    try:
        # Created directly (not through the API's create-time check) so both modes can run.
        sub = WebhookSubscription.objects.create(
            project=project,
            url=receiver.url(),
            events=["task.created"],
            secret=signing.generate_secret(),
            created_by=owner,
        )
        task_create(actor=owner, project=project, title="itest webhook")
        delivery = WebhookDelivery.objects.get(subscription=sub)
        if ssrf.is_allowed("127.0.0.1"):
            wait_for(lambda: receiver.requests, timeout, "the receiver to get the webhook")
            headers, body = receiver.requests[0]["headers"], receiver.requests[0]["body"]
            payload = Webhook(signing.display_secret(sub.secret)).verify(body, headers)
            assert payload["type"] == "task.created", payload
            return f"delivery {delivery.pk} received and verified ({headers['webhook-id']})"
        attempt = wait_for(
            lambda: WebhookAttempt.objects.filter(delivery=delivery).first(), timeout, "the worker's attempt"
        )
        assert attempt.error_class == "UnsafeTarget" and not receiver.requests, (
            attempt.error_class,
            len(receiver.requests),
        )
        return (
            f"delivery {delivery.pk} to 127.0.0.1 refused by the SSRF guard (127.0.0.1 not in WEBHOOK_ALLOWED_NETWORKS)"
        )
    finally:
        receiver.close()
        if not os.environ.get("ITEST_KEEP"):
            project.delete()
            owner.delete()
