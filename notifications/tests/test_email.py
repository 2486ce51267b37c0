"""Email delivery, by calling the task bodies directly (end-to-end with a worker: test_worker.py)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from notifications import services, tasks
from notifications.models import EmailState
from notifications.tests.factories import NotificationFactory
from tasks_app import services as task_services
from tasks_app.tests.factories import TaskFactory


@pytest.fixture
def assigned(cast):
    task = TaskFactory(project=cast.project, title="Fix the <login> page")
    task_services.task_assign(task=task, actor=cast.owner, assignee=cast.member)
    return cast.member.notifications.get()


class TestMessage:
    def test_assignment_email_has_text_html_unsubscribe_and_stable_message_id(self, assigned, settings):
        settings.SITE_URL = "https://tm.example.org"
        result = tasks.send_task_assignment_notification(assigned.pk)
        assert result == {"notification": assigned.pk, "outcome": "sent", "attempts": 1}
        [msg] = mail.outbox
        assert msg.to == ["member@example.test"]
        assert msg.subject == "[taskmgmt] owner assigned you to \u201cFix the <login> page\u201d"
        assert 'owner assigned you to "Fix the <login> page" in Apollo' in msg.body
        html, mimetype = msg.alternatives[0]
        assert mimetype == "text/html" and "Fix the &lt;login&gt; page" in html
        assert msg.extra_headers["Message-ID"] == f"<notification-{assigned.pk}@tm.example.org>"
        assert msg.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = msg.extra_headers["List-Unsubscribe"].strip("<>")
        assert url.startswith("https://tm.example.org/api/v1/notifications/unsubscribe/")
        assert url in msg.body and url in html
        assigned.refresh_from_db()
        assert assigned.email_state == EmailState.SENT and assigned.email_sent_at is not None

    def test_message_id_is_the_same_when_rebuilt(self, assigned):
        first = services.email_message(assigned).message()["Message-ID"]
        assert first == services.email_message(assigned).message()["Message-ID"]

    @pytest.mark.parametrize("kind", ["reminder", "daily_summary", "weekly_report", "webhook_disabled", "mentioned"])
    def test_every_kind_renders(self, cast, kind):
        n = services.notification_create(recipient=cast.member, kind=kind, text=f"about {kind}",
                                         data={"subscription_id": 7, "url_host": "hooks.example.org"})
        tasks.send_email_notification(n.pk)
        [msg] = mail.outbox
        assert f"about {kind}" in msg.subject and msg.alternatives[0][1] == "text/html"
        if kind != "mentioned":  # the mention template words it itself
            assert f"about {kind}" in msg.body
        if kind == "webhook_disabled":
            assert "hooks.example.org" in msg.body

    def test_password_hash_and_token_never_appear(self, assigned):
        from rest_framework.authtoken.models import Token

        token = Token.objects.create(user=assigned.recipient)
        tasks.send_email_notification(assigned.pk)
        raw = mail.outbox[0].message().as_string()
        assert assigned.recipient.password not in raw and token.key not in raw


class TestIdempotence:
    def test_redelivered_task_sends_once(self, assigned):
        tasks.send_task_assignment_notification(assigned.pk)
        second = tasks.send_email_notification(assigned.pk)
        assert second["outcome"] == "nothing_to_do" and second["state"] == "sent"
        assert len(mail.outbox) == 1

    def test_row_claimed_by_another_worker_is_left_alone(self, assigned):
        type(assigned).objects.filter(pk=assigned.pk).update(email_state="sending", email_claimed_at=timezone.now())
        assert tasks.send_email_notification(assigned.pk)["outcome"] == "nothing_to_do"
        assert mail.outbox == []

    def test_row_stuck_in_sending_long_past_the_time_limit_is_reclaimed(self, assigned):
        long_ago = timezone.now() - timedelta(hours=2)
        type(assigned).objects.filter(pk=assigned.pk).update(email_state="sending", email_claimed_at=long_ago)
        assert tasks.send_email_notification(assigned.pk)["outcome"] == "sent"
        assert len(mail.outbox) == 1

    def test_skipped_rows_are_never_emailed(self, cast):
        n = NotificationFactory(recipient=cast.member, email_state="skipped")
        assert tasks.send_email_notification(n.pk)["outcome"] == "nothing_to_do"
        assert mail.outbox == []

    def test_recipient_without_address_is_skipped(self, assigned):
        type(assigned.recipient).objects.filter(pk=assigned.recipient_id).update(email="")
        assert tasks.send_email_notification(assigned.pk)["outcome"] == "skipped"
        assert mail.outbox == []


class TestFailures:
    def test_smtp_down_records_attempt_and_schedules_a_capped_retry(self, assigned, smtp_server):
        with pytest.raises(services.EmailRetry) as exc:
            services.notification_email_deliver(notification_id=assigned.pk)
        assigned.refresh_from_db()
        assert assigned.email_state == EmailState.PENDING and assigned.email_attempts == 1
        assert assigned.email_last_error.startswith("ConnectionRefusedError")
        assert "@" not in assigned.email_last_error
        assert assigned.enqueued_at is not None  # the sweep leaves it to the retry
        assert 0 < exc.value.countdown <= 60

    def test_after_max_attempts_the_row_is_failed(self, assigned, smtp_server, settings, caplog):
        settings.NOTIFICATIONS_EMAIL_MAX_ATTEMPTS = 2
        with pytest.raises(services.EmailRetry):
            services.notification_email_deliver(notification_id=assigned.pk)
        result = services.notification_email_deliver(notification_id=assigned.pk)
        assert result["outcome"] == "failed" and result["attempts"] == 2
        assigned.refresh_from_db()
        assert assigned.email_state == EmailState.FAILED and assigned.email_attempts == 2
        assert assigned.email_last_error.startswith("ConnectionRefusedError")
        # A failed row is final: nothing re-sends it.
        assert services.notification_email_deliver(notification_id=assigned.pk)["outcome"] == "nothing_to_do"
        assert "failed after 2 attempts" in caplog.text and "@" not in caplog.text

    def test_refused_recipient_fails_without_retry_and_without_logging_the_address(self, assigned, smtp_server):
        class Refuse:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                return f"550 5.1.1 <{address}>: no such user"

        from aiosmtpd.controller import Controller

        controller = Controller(Refuse(), hostname="127.0.0.1", port=smtp_server.port)
        controller.start()
        try:
            result = services.notification_email_deliver(notification_id=assigned.pk)
        finally:
            controller.stop()
        assert result["outcome"] == "failed"
        assigned.refresh_from_db()
        assert assigned.email_state == EmailState.FAILED
        assert assigned.email_last_error == "SMTPRecipientsRefused: recipient refused"

    @pytest.mark.parametrize("attempts", [1, 2, 3, 5, 8, 20])
    def test_backoff_grows_and_is_capped(self, attempts, settings):
        settings.NOTIFICATIONS_EMAIL_RETRY_BASE_SECONDS = 2
        countdown = services.retry_countdown(attempts)
        base = 2 * 2 ** (attempts - 1)
        assert min(base, 60) <= countdown <= min(base * 1.5, 60)

    def test_short_error_strips_addresses(self):
        import smtplib

        err = services._short_error(smtplib.SMTPDataError(554, b"rejected for bob@example.com, sorry"))
        assert err == "SMTPDataError: 554 rejected for <address>, sorry"


class TestSweep:
    def test_stuck_pending_email_is_republished_by_the_sweep(self, assigned, redis_clean):
        from core import outbox

        type(assigned).objects.filter(pk=assigned.pk).update(created_at=timezone.now() - timedelta(hours=1))
        report = outbox.sweep()
        assert report["notifications.email"] == 1
        assigned.refresh_from_db()
        assert assigned.enqueued_at is not None
        assert outbox.sweep()["notifications.email"] == 0  # just re-published: not stale yet


class TestDatabaseFailures:
    def test_retry_with_the_same_task_id_takes_back_its_claim(self, assigned):
        from notifications.models import Notification

        # A first run claimed the row, then the database dropped before it could send.
        Notification.objects.filter(pk=assigned.pk).update(
            email_state=EmailState.SENDING, email_claimed_at=timezone.now(), email_claim_token="task-1")
        other = services.notification_email_deliver(notification_id=assigned.pk, claim_token="task-2")
        assert other["outcome"] == "nothing_to_do" and not mail.outbox
        mine = services.notification_email_deliver(notification_id=assigned.pk, claim_token="task-1")
        assert mine["outcome"] == EmailState.SENT and len(mail.outbox) == 1

    def test_sent_but_unrecorded_is_recorded_by_the_retry_without_resending(self, assigned, monkeypatch):
        from django.db import OperationalError

        real_finish = services._finish

        def flaky_finish(notification_id, state, **kwargs):
            if state == EmailState.SENT:
                raise OperationalError("server closed the connection unexpectedly")
            return real_finish(notification_id, state, **kwargs)

        monkeypatch.setattr(services, "_finish", flaky_finish)
        with pytest.raises(services.DeliveredButUnrecorded):
            services.notification_email_deliver(notification_id=assigned.pk, claim_token="task-1")
        monkeypatch.setattr(services, "_finish", real_finish)
        assert len(mail.outbox) == 1
        result = services.notification_email_deliver(notification_id=assigned.pk, claim_token="task-1",
                                                      already_sent=True)
        assert result["outcome"] == EmailState.SENT and len(mail.outbox) == 1
        assigned.refresh_from_db()
        assert assigned.email_state == EmailState.SENT and assigned.email_claim_token == ""
