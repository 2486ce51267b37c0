"""End to end: API -> row in the request's transaction -> real worker over Redis -> real SMTP server."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from core import outbox
from core.enqueue import publish_now_rollback_unsafe
from notifications import services
from notifications.models import Notification
from notifications.tests.factories import NotificationFactory
from tests.support import wait_until


def parts(message):
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


@pytest.mark.worker
def test_assignment_and_mention_emails_arrive_once_even_when_smtp_was_down(
    cast, api, start_celery_worker, smtp_server, settings
):
    settings.NOTIFICATIONS_EMAIL_RETRY_BASE_SECONDS = 0.3
    settings.NOTIFICATIONS_EMAIL_MAX_ATTEMPTS = 10
    settings.SITE_URL = "http://tm.test"
    owner = api(cast.owner)
    task_id = owner.post("/api/v1/tasks/", {"project": cast.project.pk, "title": "Write docs"}, format="json").json()[
        "id"
    ]

    with start_celery_worker(queues=["notifications"]):
        # SMTP is down: the assignment is accepted, the email waits and retries.
        r = owner.patch(f"/api/v1/tasks/{task_id}/", {"assignee": cast.member.pk}, format="json")
        assert r.status_code == 200
        assigned = Notification.objects.get(kind="assigned")
        wait_until(
            lambda: (
                Notification.objects.filter(pk=assigned.pk, email_attempts__gte=1, email_state="pending")
                .exclude(email_last_error="")
                .exists()
            ),
            "a failed first attempt",
        )
        assigned.refresh_from_db()
        assert assigned.email_last_error.startswith("ConnectionRefusedError")

        smtp_server.start()
        wait_until(lambda: smtp_server.inbox.messages, "the assignment email")
        wait_until(lambda: Notification.objects.filter(pk=assigned.pk, email_state="sent").exists(), "state sent")

        # A mention on a comment, through the API, while everything is up.
        r = owner.post(
            f"/api/v1/tasks/{task_id}/comments/", {"body": "@Member please review; cc bob@example.com"}, format="json"
        )
        assert r.status_code == 201
        wait_until(lambda: len(smtp_server.inbox.messages) >= 2, "the mention email")
        mention = Notification.objects.get(kind="mentioned")
        wait_until(lambda: Notification.objects.filter(pk=mention.pk, email_state="sent").exists(), "mention sent")
        time.sleep(1.0)  # room for a duplicate to show up, if the claim did not hold

    assigned.refresh_from_db()
    assert assigned.email_attempts >= 2 and assigned.email_last_error == ""
    assert len(smtp_server.inbox.messages) == 2  # each email exactly once
    first, second = smtp_server.inbox.messages
    assert smtp_server.inbox.envelopes[0][1] == ["member@example.test"]

    assert first["Message-ID"] == f"<notification-{assigned.pk}@tm.test>"
    assert second["Message-ID"] == f"<notification-{mention.pk}@tm.test>"
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(first)
    assert 'owner assigned you to "Write docs" in Apollo' in text
    assert "Write docs" in html and "<a href=" in html
    text, _ = parts(second)
    assert "owner mentioned you" in text and "@Member please review" in text

    # The unsubscribe link of the email works without logging in.
    url = first["List-Unsubscribe"].strip("<>").split("://", 1)[1].split("/", 1)[1]
    assert api().post("/" + url).status_code == 200
    assert services.notification_create(recipient=cast.member, kind="assigned", text="x").email_state == "skipped"

    # A redelivered message for an email already sent does nothing.
    from notifications.tasks import send_email_notification

    assert send_email_notification(assigned.pk)["outcome"] == "nothing_to_do"
    assert len(smtp_server.inbox.messages) == 2


@pytest.mark.worker
def test_swept_backlog_goes_out_in_batches_each_email_once(cast, start_celery_worker, smtp_server, settings):
    """Rows left pending (an outage): the sweep publishes NOTIFICATIONS_EMAIL_BATCH_SIZE ids per message, the
    worker claims and sends them, and a second publish of the same batches sends nothing more."""
    settings.NOTIFICATIONS_EMAIL_BATCH_SIZE = 4
    settings.NOTIFICATIONS_EMAIL_COALESCE_SECONDS = 0  # exactly the sweep's messages (test_coalesced.py: the bell)
    settings.SITE_URL = "http://tm.test"
    old = timezone.now() - timedelta(hours=1)
    ids = [
        NotificationFactory(recipient=cast.member, email_state="pending", created_at=old + timedelta(seconds=i)).pk
        for i in range(10)
    ]
    smtp_server.start()
    with start_celery_worker(queues=["notifications"]):
        assert outbox.sweep()["notifications.email"] == 10
        wait_until(lambda: Notification.objects.filter(pk__in=ids, email_state="sent").count() == 10, "the backlog")
        results = TaskResult.objects.filter(task_name="notifications.send_email_notification")
        wait_until(lambda: results.count() == 3, "the sweep's three messages to be recorded")
        assert sum(json.loads(r.result)["sent"] for r in results.all()) == 10
        swept = set(results.values_list("task_id", flat=True))
        for i in range(0, 10, 4):  # the same batches again (a duplicate sweep, a redelivery)
            assert publish_now_rollback_unsafe("notifications.send_email_notification", args=[ids[i : i + 4]])
        wait_until(lambda: results.count() == 6, "the duplicate batches to run")
    duplicates = [json.loads(r.result) for r in results.exclude(task_id__in=swept)]
    assert [c["sent"] for c in duplicates] == [0, 0, 0]
    assert sorted(c["nothing_to_do"] for c in duplicates) == [2, 4, 4]
    assert sorted(m["Message-ID"] for m in smtp_server.inbox.messages) == sorted(
        f"<notification-{pk}@tm.test>" for pk in ids
    )
