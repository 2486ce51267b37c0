"""Flow for scripts/test_async_integration.py: a task event delivered by the running worker to a local
receiver. With WEBHOOK_ALLOW_PRIVATE_TARGETS off (the default, also in the worker) the flow checks the
opposite: the worker refuses the 127.0.0.1 target and the receiver gets nothing."""

import http.server
import os
import threading
import uuid

from core.itest import flow, wait_for


def _receiver():
    got = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append((dict(self.headers.items()), self.rfile.read(int(self.headers.get("Content-Length") or 0))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


@flow
def webhook_delivery(timeout):
    from django.contrib.auth import get_user_model
    from standardwebhooks import Webhook

    from tasks_app import services as task_services
    from webhooks import conf, signing
    from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

    suffix = uuid.uuid4().hex[:8]
    owner = get_user_model().objects.create_user(f"itest-webhook-owner-{suffix}")
    project = task_services.project_create(actor=owner, name=f"itest-webhook-{suffix}")
    server, got = _receiver()
    try:
        # Created directly (not through the API's create-time check) so both modes can run.
        sub = WebhookSubscription.objects.create(
            project=project, url=f"http://127.0.0.1:{server.server_address[1]}/hook", events=["task.created"],
            secret=signing.generate_secret(), created_by=owner)
        task_services.task_create(actor=owner, project=project, title="itest webhook")
        delivery = WebhookDelivery.objects.get(subscription=sub)
        if conf.allow_private_targets():
            wait_for(lambda: got, timeout, "the receiver to get the webhook")
            headers, body = got[0]
            payload = Webhook(signing.display_secret(sub.secret)).verify(body, headers)
            assert payload["type"] == "task.created", payload
            return f"delivery {delivery.pk} received and verified ({headers['webhook-id']})"
        attempt = wait_for(lambda: WebhookAttempt.objects.filter(delivery=delivery).first(), timeout,
                           "the worker's attempt")
        assert attempt.error_class == "UnsafeTarget" and not got, (attempt.error_class, len(got))
        return f"delivery {delivery.pk} to 127.0.0.1 refused by the SSRF guard (private targets off)"
    finally:
        server.shutdown()
        server.server_close()
        if not os.environ.get("ITEST_KEEP"):
            project.delete()
            owner.delete()
