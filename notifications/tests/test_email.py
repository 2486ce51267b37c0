"""Email delivery, by calling the task bodies directly (end-to-end with a worker: test_worker.py)."""

import base64
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from notifications import sending, services, tasks
from notifications.models import EmailState
from notifications.tests.factories import NotificationFactory
from tasks_app.services.tasks import task_assign
from tasks_app.tests.factories import TaskFactory


def _stale_pending(recipient, count):
    """`count` pending emails older than the sweep age, oldest first; their ids."""
    old = timezone.now() - timedelta(hours=1)
    rows = [
        NotificationFactory(recipient=recipient, email_state=EmailState.PENDING, created_at=old + timedelta(seconds=i))
        for i in range(count)
    ]
    return [row.pk for row in rows]


def _queued(redis, queue="notifications"):
    """(task name, args) of the messages waiting in a Redis queue, oldest first (LPUSH: the list is newest first)."""
    messages = [json.loads(raw) for raw in reversed(redis.lrange(queue, 0, -1))]
    return [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in messages]


@pytest.fixture
def assigned(cast):
    task = TaskFactory(project=cast.project, title="Fix the <login> page")
    task_assign(task=task, actor=cast.owner, assignee=cast.member)
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
        assert url.startswith("https://tm.example.org/unsubscribe/")
        assert url in msg.body and url in html
        assigned.refresh_from_db()
        assert assigned.email_state == EmailState.SENT and assigned.email_sent_at is not None

    def test_message_id_is_the_same_when_rebuilt(self, assigned):
        first = sending.email_message(assigned).message()["Message-ID"]
        assert first == sending.email_message(assigned).message()["Message-ID"]

    @pytest.mark.parametrize("kind", ["reminder", "daily_summary", "weekly_report", "webhook_disabled", "mentioned"])
    def test_every_kind_renders(self, cast, kind):
        n = services.notification_create(
            recipient=cast.member,
            kind=kind,
            text=f"about {kind}",
            data={"subscription_id": 7, "url_host": "hooks.example.org"},
        )
        tasks.send_email_notification(n.pk)
        [msg] = mail.outbox
        assert f"about {kind}" in msg.subject and msg.alternatives[0][1] == "text/html"
        if kind != "mentioned":  # the mention template words it itself
            assert f"about {kind}" in msg.body
        if kind == "webhook_disabled":
            assert "hooks.example.org" in msg.body

    def test_password_hash_and_token_never_appear(self, assigned):
        from accounts.services import api_token_create

        _, key = api_token_create(user=assigned.recipient, name="test")
        tasks.send_email_notification(assigned.pk)
        raw = mail.outbox[0].message().as_string()
        assert assigned.recipient.password not in raw and key not in raw


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
        with pytest.raises(sending.EmailRetry) as exc:
            sending.notification_email_deliver(notification_id=assigned.pk)
        assigned.refresh_from_db()
        assert assigned.email_state == EmailState.PENDING and assigned.email_attempts == 1
        assert assigned.email_last_error.startswith("ConnectionRefusedError")
        assert "@" not in assigned.email_last_error
        assert assigned.enqueued_at is not None  # the sweep leaves it to the retry
        assert 0 < exc.value.countdown <= 60

    def test_after_max_attempts_the_row_is_failed(self, assigned, smtp_server, settings, caplog):
        settings.NOTIFICATIONS_EMAIL_MAX_ATTEMPTS = 2
        with pytest.raises(sending.EmailRetry):
            sending.notification_email_deliver(notification_id=assigned.pk)
        result = sending.notification_email_deliver(notification_id=assigned.pk)
        assert result["outcome"] == "failed" and result["attempts"] == 2
        assigned.refresh_from_db()
        assert assigned.email_state == EmailState.FAILED and assigned.email_attempts == 2
        assert assigned.email_last_error.startswith("ConnectionRefusedError")
        # A failed row is final: nothing re-sends it.
        assert sending.notification_email_deliver(notification_id=assigned.pk)["outcome"] == "nothing_to_do"
        assert "failed after 2 attempts" in caplog.text and "@" not in caplog.text

    def test_refused_recipient_fails_without_retry_and_without_logging_the_address(self, assigned, smtp_server):
        class Refuse:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                return f"550 5.1.1 <{address}>: no such user"

        from aiosmtpd.controller import Controller

        controller = Controller(Refuse(), hostname="127.0.0.1", port=smtp_server.port)
        controller.start()
        try:
            result = sending.notification_email_deliver(notification_id=assigned.pk)
        finally:
            controller.stop()
        assert result["outcome"] == "failed"
        assigned.refresh_from_db()
        assert assigned.email_state == EmailState.FAILED
        assert assigned.email_last_error == "SMTPRecipientsRefused: recipient refused"

    @pytest.mark.parametrize("attempts", [1, 2, 3, 5, 8, 20])
    def test_backoff_grows_and_is_capped(self, attempts, settings):
        settings.NOTIFICATIONS_EMAIL_RETRY_BASE_SECONDS = 2
        countdown = sending.retry_countdown(attempts)
        base = 2 * 2 ** (attempts - 1)
        assert min(base, 60) <= countdown <= min(base * 1.5, 60)

    def test_short_error_strips_addresses(self):
        import smtplib

        err = sending._short_error(smtplib.SMTPDataError(554, b"rejected for bob@example.com, sorry"))
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

    @pytest.mark.parametrize("batch_size,expected_chunks", [(3, [3, 3, 1]), (1, [1] * 7)])
    def test_sweep_republishes_pending_emails_batch_size_ids_per_message(
        self, cast, redis_clean, settings, batch_size, expected_chunks
    ):
        from core import outbox

        settings.NOTIFICATIONS_EMAIL_BATCH_SIZE = batch_size  # the setting services._enqueue_emails chunks by
        ids = _stale_pending(cast.member, 7)
        other = NotificationFactory(recipient=cast.member)  # skipped: never swept
        assert outbox.sweep()["notifications.email"] == 7
        messages = _queued(redis_clean)
        assert [task for task, _ in messages] == ["notifications.send_email_notification"] * len(expected_chunks)
        # One list of ids per message (even a list of one), oldest first, every row exactly once.
        chunks = [args[0] for _, args in messages]
        assert all(len(args) == 1 and isinstance(args[0], list) for _, args in messages)
        assert [len(chunk) for chunk in chunks] == expected_chunks
        assert [pk for chunk in chunks for pk in chunk] == ids and other.pk not in ids
        # Stamped: the next sweep (and a concurrent one) publishes none of them again.
        assert outbox.sweep()["notifications.email"] == 0
        assert outbox.sweep(before=timezone.now().timestamp() + 1)["notifications.email"] == 0
        assert len(_queued(redis_clean)) == len(expected_chunks)

    def test_a_swept_batch_delivered_twice_sends_each_email_once(self, cast, redis_clean, settings):
        from core import outbox
        from notifications.models import Notification

        settings.NOTIFICATIONS_EMAIL_BATCH_SIZE = 3
        settings.SITE_URL = "https://tm.example.org"
        ids = _stale_pending(cast.member, 5)
        assert outbox.sweep()["notifications.email"] == 5
        messages = _queued(redis_clean)
        for _, args in messages + messages:  # every message redelivered once more
            tasks.send_email_notification(*args)
        assert tasks.send_email_notification(ids[0])["outcome"] == "nothing_to_do"  # the row's original message
        assert sorted(m.extra_headers["Message-ID"] for m in mail.outbox) == sorted(
            f"<notification-{pk}@tm.example.org>" for pk in ids
        )
        assert set(Notification.objects.filter(pk__in=ids).values_list("email_state", flat=True)) == {EmailState.SENT}


class TestDatabaseFailures:
    def test_retry_with_the_same_task_id_takes_back_its_claim(self, assigned):
        from notifications.models import Notification

        # A first run claimed the row, then the database dropped before it could send.
        Notification.objects.filter(pk=assigned.pk).update(
            email_state=EmailState.SENDING, email_claimed_at=timezone.now(), email_claim_token="task-1"
        )
        other = sending.notification_email_deliver(notification_id=assigned.pk, claim_token="task-2")
        assert other["outcome"] == "nothing_to_do" and not mail.outbox
        mine = sending.notification_email_deliver(notification_id=assigned.pk, claim_token="task-1")
        assert mine["outcome"] == EmailState.SENT and len(mail.outbox) == 1

    def test_sent_but_unrecorded_is_recorded_by_the_retry_without_resending(self, assigned, monkeypatch):
        from django.db import OperationalError

        real_record = sending._record_sent

        def flaky_record(ids, **kwargs):
            raise OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(sending, "_record_sent", flaky_record)
        with pytest.raises(sending.DeliveredButUnrecorded):
            sending.notification_email_deliver(notification_id=assigned.pk, claim_token="task-1")
        monkeypatch.setattr(sending, "_record_sent", real_record)
        assert len(mail.outbox) == 1
        result = sending.notification_email_deliver(
            notification_id=assigned.pk, claim_token="task-1", already_sent=True
        )
        assert result["outcome"] == EmailState.SENT and len(mail.outbox) == 1
        assigned.refresh_from_db()
        assert assigned.email_state == EmailState.SENT and assigned.email_claim_token == ""

    def test_batch_retry_records_what_was_sent_and_sends_the_rest_once(self, cast, monkeypatch):
        from django.db import OperationalError

        rows = [services.notification_create(recipient=cast.member, kind="reminder", text=f"r{i}") for i in range(3)]
        ids = [n.pk for n in rows]
        real_record = sending._record_sent
        monkeypatch.setattr(sending, "_record_sent", lambda ids, **kw: (_ for _ in ()).throw(OperationalError("x")))
        real_send = sending._send_all
        # The first run sends two of the three, then the database drops.
        monkeypatch.setattr(sending, "_send_all", lambda batch: real_send(batch[:2]) | {batch[2].pk: OSError("x")})
        with pytest.raises(sending.DeliveredButUnrecorded) as exc:
            sending.notification_emails_deliver(notification_ids=ids, claim_token="task-9")
        assert sorted(exc.value.sent_ids) == ids[:2] and len(mail.outbox) == 2
        monkeypatch.setattr(sending, "_record_sent", real_record)
        monkeypatch.setattr(sending, "_send_all", real_send)
        # The retry (same task id) records the two and sends only the third; a duplicate finds nothing.
        report = sending.notification_emails_deliver(
            notification_ids=ids, claim_token="task-9", already_sent=exc.value.sent_ids
        )
        assert sorted(report["sent"]) == ids and len(mail.outbox) == 3
        assert sending.notification_emails_deliver(notification_ids=ids)["nothing_to_do"] == ids
        assert set(type(rows[0]).objects.filter(pk__in=ids).values_list("email_state", flat=True)) == {"sent"}


class TestBatches:
    def test_a_list_of_ids_is_one_claim_and_one_smtp_connection(self, cast, smtp_server):
        smtp_server.start()
        rows = [services.notification_create(recipient=cast.member, kind="reminder", text=f"r{i}") for i in range(5)]
        result = tasks.send_email_notification([n.pk for n in rows])
        assert result == {"sent": 5, "skipped": 0, "failed": 0, "nothing_to_do": 0}
        assert len(smtp_server.inbox.messages) == 5
        assert len(smtp_server.inbox.sessions) == 1  # one SMTP conversation for the batch
        assert {m["Message-ID"] for m in smtp_server.inbox.messages} == {
            f"<notification-{n.pk}@127.0.0.1>" for n in rows
        }
        assert tasks.send_email_notification([n.pk for n in rows])["nothing_to_do"] == 5

    def test_queries_do_not_grow_with_the_batch(self, cast):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        def run(n):
            ids = [services.notification_create(recipient=cast.member, kind="reminder", text="x").pk for _ in range(n)]
            with CaptureQueriesContext(connection) as ctx:
                report = sending.notification_emails_deliver(notification_ids=ids)
            assert len(report["sent"]) == n
            # Rendering reads the signing key etc., never per-row queries: compare two sizes.
            return len(ctx.captured_queries)

        assert run(2) == run(12)

    def test_one_id_takes_along_other_never_attempted_pending_rows(self, cast, settings):
        # One message per notification (coalesced wake-ups off: test_coalesced.py covers them).
        settings.NOTIFICATIONS_EMAIL_COALESCE_SECONDS = 0
        settings.NOTIFICATIONS_EMAIL_BATCH_SIZE = 3
        rows = [services.notification_create(recipient=cast.member, kind="reminder", text=f"r{i}") for i in range(4)]
        backing_off = services.notification_create(recipient=cast.member, kind="reminder", text="retrying")
        type(backing_off).objects.filter(pk=backing_off.pk).update(email_attempts=1)
        result = tasks.send_email_notification(rows[0].pk)
        assert result["outcome"] == "sent" and result["batch"]["sent"] == 3
        assert len(mail.outbox) == 3
        states = dict(type(backing_off).objects.values_list("pk", "email_state"))
        assert [states[n.pk] for n in rows] == ["sent", "sent", "sent", "pending"]  # oldest first, 3 in all
        assert states[backing_off.pk] == "pending"  # left to its own retry
        # Their own messages find nothing to do (and take nothing along); the last fresh row's message sends it.
        assert tasks.send_email_notification(rows[1].pk)["outcome"] == "nothing_to_do"
        assert len(mail.outbox) == 3
        assert tasks.send_email_notification(rows[3].pk)["outcome"] == "sent"
        assert len(mail.outbox) == 4 and type(backing_off).objects.get(pk=backing_off.pk).email_state == "pending"
        assert len({m.extra_headers["Message-ID"] for m in mail.outbox}) == 4  # none twice

    def test_transient_failure_puts_only_the_failed_rows_back(self, cast, monkeypatch):
        rows = [services.notification_create(recipient=cast.member, kind="reminder", text=f"r{i}") for i in range(3)]
        real_send = sending._send_all
        monkeypatch.setattr(sending, "_send_all", lambda batch: real_send(batch[1:]) | {batch[0].pk: OSError("down")})
        report = sending.notification_emails_deliver(notification_ids=[n.pk for n in rows])
        assert report["retry"] == [rows[0].pk] and sorted(report["sent"]) == [rows[1].pk, rows[2].pk]
        assert 0 < report["countdown"] <= 60
        first = type(rows[0]).objects.get(pk=rows[0].pk)
        assert first.email_state == "pending" and first.email_attempts == 1 and first.enqueued_at is not None
