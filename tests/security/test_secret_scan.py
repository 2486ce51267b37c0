"""No webhook secret, API token or email address in logs, stored task results or broker messages.

A realistic workload runs through a real worker over Redis: API tokens are issued, webhook subscriptions are
created and rotated (whsec_ secrets), deliveries go to a receiver on 127.0.0.1 (one refused, retried), tasks are
assigned and users mentioned so emails go through a real SMTP server (down at first, so retries happen), and an
export runs. Meanwhile every log record from every logger is captured at DEBUG. Then the worker stops and more work
is published, so messages sit in Redis. The scan covers (a) the log records, (b) every django_celery_results
TaskResult (args, kwargs, result, traceback, meta), (c) every value under every key in the test's Redis database,
with kombu message bodies base64-decoded.
"""

import base64
import json
import logging

import pytest
from rest_framework.test import APIClient

from tests.support import Receiver, wait_until
from webhooks.tests.conftest import fast_retries  # noqa: F401

pytestmark = pytest.mark.worker
# The stand-ins for the internet log what they receive (aiosmtpd logs every recipient): they are the far end,
# not the application, so their own loggers are not scanned.
FAR_END_LOGGERS = ("mail.log",)


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines = []

    def emit(self, record):
        if record.name.startswith(FAR_END_LOGGERS):
            return
        self.lines.append(f"{self.format(record)} args={record.args!r}")


@pytest.fixture
def capture_all_logs():
    """A handler on the root logger and on every non-propagating logger, everything at DEBUG, restored after."""
    handler = Capture()
    touched = []

    def attach():  # call again after the worker configured logging
        for logger in [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]:
            if logger.name.startswith(FAR_END_LOGGERS):
                continue
            touched.append((logger, logger.level, logger.disabled))
            logger.setLevel(logging.DEBUG)
            logger.disabled = False
            if (logger is logging.getLogger() or not logger.propagate) and handler not in logger.handlers:
                logger.addHandler(handler)

    attach()
    handler.attach = attach
    yield handler
    for logger, level, disabled in reversed(touched):
        logger.setLevel(level)
        logger.disabled = disabled
        if handler in logger.handlers:
            logger.removeHandler(handler)


def secret_forms(secret):
    """The ways a webhook secret could show up: stored base64, whsec_ form, raw key bytes as hex/repr/urlsafe."""
    raw = base64.b64decode(secret)
    return {secret, f"whsec_{secret}", raw.hex(), repr(raw)[2:-1], base64.urlsafe_b64encode(raw).decode()}


def redis_dump(client):
    """Every value in the test Redis db as text, kombu message bodies decoded."""
    texts = []

    def add(value):
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        texts.append(text)
        try:
            envelope = json.loads(text)
        except ValueError:
            return
        if isinstance(envelope, dict) and isinstance(envelope.get("body"), str):
            texts.append(base64.b64decode(envelope["body"]).decode(errors="replace"))
        elif isinstance(envelope, list) and envelope and isinstance(envelope[0], dict):  # unacked: [message, ...]
            add(json.dumps(envelope[0]))

    for key in client.scan_iter("*"):
        texts.append(key.decode(errors="replace"))
        kind = client.type(key).decode()
        if kind == "list":
            for v in client.lrange(key, 0, -1):
                add(v)
        elif kind == "hash":
            for k, v in client.hgetall(key).items():
                add(k), add(v)
        elif kind == "set":
            for v in client.smembers(key):
                add(v)
        elif kind == "zset":
            for v, _ in client.zrange(key, 0, -1, withscores=True):
                add(v)
        elif kind == "string":
            add(client.get(key))
    return texts


def test_no_secret_token_or_address_in_logs_results_or_broker(
    cast,
    start_celery_worker,
    redis_clean,
    smtp_server,
    fast_retries,  # noqa: F811
    settings,
    capture_all_logs,
):
    from django.contrib.auth import get_user_model
    from django_celery_results.models import TaskResult

    from analytics.models import ExportJob
    from notifications.models import Notification
    from webhooks.models import DeliveryState, WebhookDelivery, WebhookSubscription

    settings.NOTIFICATIONS_EMAIL_RETRY_BASE_SECONDS = 0.3
    settings.SITE_URL = "http://tm.test"
    receiver = Receiver()
    p = cast.project.pk

    issued_keys = []  # the database keeps only digests, so the keys are collected as they are issued

    def login(user):
        r = APIClient().post("/api/v1/auth/token/", {"username": user.username, "password": "pw-123456"}, format="json")
        assert r.status_code == 200, r.content
        issued_keys.append(r.json()["token"])
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {r.json()['token']}")
        return client

    owner, member = login(cast.owner), login(cast.member)
    try:
        with start_celery_worker():
            capture_all_logs.attach()
            hook = owner.post(
                "/api/v1/webhooks/",
                {"project": p, "url": receiver.url(), "events": ["task.created", "task.updated", "comment.created"]},
                format="json",
            )
            assert hook.status_code == 201 and hook.json()["secret"].startswith("whsec_")
            assert owner.post(f"/api/v1/webhooks/{hook.json()['id']}/rotate-secret/").status_code == 200
            receiver.respond((500, {}, "boom"))  # one failed attempt, retried
            # SMTP is down for the first emails: they fail, are logged and retried.
            tasks = [
                owner.post(
                    "/api/v1/tasks/", {"project": p, "title": f"Task {i}", "assignee": cast.member.pk}, format="json"
                ).json()["id"]
                for i in range(3)
            ]
            wait_until(lambda: Notification.objects.exclude(email_last_error="").exists(), "a failed email")
            smtp_server.start()
            for task_id in tasks:
                r = member.post(
                    f"/api/v1/tasks/{task_id}/comments/",
                    {"body": f"@{cast.owner.username} @{cast.admin.username} see {cast.viewer.email}"},
                    format="json",
                )
                assert r.status_code == 201
            owner.patch(f"/api/v1/tasks/{tasks[0]}/", {"assignee": cast.admin.pk}, format="json")
            assert owner.post(f"/api/v1/webhooks/{hook.json()['id']}/ping/").status_code == 202
            export = owner.post("/api/v1/exports/", {"format": "csv", "project": p}, format="json")
            assert export.status_code == 202

            emails = Notification.objects.exclude(recipient__email="")
            wait_until(
                lambda: emails.count() >= 10 and not emails.filter(email_state="pending").exists(),
                "all emails sent",
                timeout=40,
            )
            wait_until(
                lambda: not WebhookDelivery.objects.exclude(state=DeliveryState.DELIVERED).exists(),
                "all deliveries delivered",
                timeout=40,
            )
            wait_until(lambda: ExportJob.objects.filter(status="succeeded").exists(), "the export")
        # Worker stopped: what is published now stays in Redis for the scan.
        owner.post("/api/v1/tasks/", {"project": p, "title": "Queued", "assignee": cast.member.pk}, format="json")
        owner.post(
            "/api/v1/webhooks/",
            {"project": p, "url": receiver.url("/second"), "events": ["task.created"]},
            format="json",
        )
        owner.post("/api/v1/tasks/", {"project": p, "title": "Queued 2", "assignee": cast.admin.pk}, format="json")
    finally:
        receiver.close()

    # The workload really happened: emails to real addresses, signed deliveries, results stored.
    assert len(smtp_server.inbox.messages) >= 10
    assert len(receiver.requests) >= 8
    assert TaskResult.objects.filter(task_name="webhooks.deliver_webhook").count() >= 3
    queued = redis_dump(redis_clean)
    assert any("webhooks.deliver_webhook" in t for t in queued)  # messages are waiting in the queues
    assert any("notifications.send_" in t for t in queued)  # (one message per waiting burst: coalesced)
    # The needles have the right shape: the same values do travel where they belong (mail, signatures).
    assert any(cast.member.email in str(m["To"]) for m in smtp_server.inbox.messages)
    from standardwebhooks import Webhook

    ping = next(r for r in receiver.requests if b"webhook.ping" in r["body"])
    current = WebhookSubscription.objects.get(pk=hook.json()["id"]).secret
    assert Webhook(f"whsec_{current}").verify(ping["body"], ping["headers"])["type"] == "webhook.ping"

    stored_secrets = {
        s for sub in WebhookSubscription.objects.all() for s in filter(None, [sub.secret, sub.previous_secret])
    }
    addresses = set(get_user_model().objects.exclude(email="").values_list("email", flat=True))
    # Two subscriptions, the first rotated (its old secret kept for the grace period); two tokens issued.
    assert len(stored_secrets) == 3 and len(set(issued_keys)) == 2
    assert addresses == {
        getattr(cast, who).email for who in ("owner", "admin", "member", "viewer", "outsider", "staff")
    }
    needles = {
        # 4 or 5 forms each: the urlsafe form equals the stored one when the secret has no + or /.
        **dict.fromkeys(set().union(*map(secret_forms, stored_secrets)), "webhook secret"),
        **dict.fromkeys(issued_keys, "API token"),
        **dict.fromkeys(addresses, "email address"),
    }

    haystacks = {
        "logs": capture_all_logs.lines,
        "task results": [
            json.dumps([r.task_name, r.task_args, r.task_kwargs, r.result, r.traceback, r.meta])
            for r in TaskResult.objects.all()
        ],
        "redis": queued,
    }
    assert len(haystacks["task results"]) >= 15
    # The worker's own records are in (task received / succeeded, with its argsrepr and result), not just ours.
    assert any(line.startswith("celery.app.trace") and "succeeded" in line for line in haystacks["logs"])
    assert any("Notification" in line or "notification" in line for line in haystacks["logs"])
    leaks = [
        f"{kind} in {where}: {text[:300]}"
        for where, texts in haystacks.items()
        for text in texts
        for needle, kind in needles.items()
        if needle in text
    ]
    print(
        f"\nsecret scan: {len(needles)} needles; {len(haystacks['logs'])} log records, "
        f"{len(haystacks['task results'])} task results, {len(queued)} redis values; leaks {len(leaks)}"
    )
    assert not leaks, "\n".join(leaks[:20])
