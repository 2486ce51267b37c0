"""Coalesced wake-ups for notification emails (core.enqueue.enqueue_on_commit_coalesced, the shipped default).

A notification written alone publishes its message only when no earlier one is still waiting; the worker answers
the bell before it claims, takes every waiting row a batch at a time, and each full batch publishes the next. The
rows are the truth: each email goes once, none waits for the sweep."""

import base64
import json

import pytest
from django.core import mail
from django.db import transaction
from django_celery_results.models import TaskResult

from core.enqueue import DOORBELL_PREFIX
from notifications import services, tasks
from notifications.models import Notification
from tests.support import wait_until

TASK = "notifications.send_email_notification"


def queued(redis):
    """Task name and args of each message waiting on the notifications queue (Redis broker), oldest first."""
    bodies = [json.loads(raw) for raw in reversed(redis.lrange("notifications", 0, -1))]
    return [(b["headers"]["task"], json.loads(base64.b64decode(b["body"]))[0]) for b in bodies]


def write(user, text):
    """One notification in its own committed transaction, as a request would write it."""
    with transaction.atomic():
        return services.notification_create(recipient=user, kind="reminder", text=text)


@pytest.fixture
def redis_broker(settings, redis_clean):
    if settings.BROKER_IS_AMQP:
        pytest.skip("reads the Redis broker's queue")
    return redis_clean


@pytest.mark.django_db(transaction=True)
def test_writes_while_a_message_waits_publish_nothing_and_its_worker_takes_them_all(cast, redis_broker):
    rows = [write(cast.member, f"r{i}") for i in range(5)]
    assert queued(redis_broker) == [(TASK, [rows[0].pk])]  # the first rang; the others found the bell rung
    assert redis_broker.keys(f"*{DOORBELL_PREFIX}*")

    result = tasks.send_email_notification(rows[0].pk)  # the worker's side, called directly
    assert result["outcome"] == "sent" and result["batch"]["sent"] == 5
    assert sorted(m.extra_headers["Message-ID"] for m in mail.outbox) == sorted(
        f"<notification-{n.pk}@{services._message_id_domain()}>" for n in rows
    )
    assert not redis_broker.keys(f"*{DOORBELL_PREFIX}*")  # answered
    # The next write rings again.
    later = write(cast.member, "later")
    assert queued(redis_broker)[1:] == [(TASK, [later.pk])]


@pytest.mark.django_db(transaction=True)
def test_a_full_batch_publishes_the_next_so_nothing_waits_for_the_sweep(cast, redis_broker, settings):
    settings.NOTIFICATIONS_EMAIL_BATCH_SIZE = 3
    rows = [write(cast.member, f"r{i}") for i in range(7)]
    assert len(queued(redis_broker)) == 1
    redis_broker.delete("notifications")

    sent = []
    pending = [rows[0].pk]
    while pending:
        report = tasks.send_email_notification(pending.pop())
        sent.append(report["batch"]["sent"] if "batch" in report else int(report["outcome"] == "sent"))
        pending += [args[0] for _, args in queued(redis_broker)]
        redis_broker.delete("notifications")
    # 3 + 3 + 1: each full batch published a message for the oldest row still waiting; the last did not.
    assert sent == [3, 3, 1]
    assert Notification.objects.filter(email_state="sent").count() == 7 and len(mail.outbox) == 7


@pytest.mark.django_db(transaction=True)
def test_the_own_row_taken_elsewhere_still_takes_the_waiting_ones(cast, redis_broker):
    """A write that found the bell rung counts on that message's worker, even if its own row went in another batch."""
    first = write(cast.member, "first")
    second = write(cast.member, "second")
    Notification.objects.filter(pk=first.pk).update(email_state="sent")  # another batch took it
    report = tasks.send_email_notification(first.pk)
    assert report["outcome"] == "nothing_to_do" and report["batch"]["sent"] == 1
    assert Notification.objects.get(pk=second.pk).email_state == "sent"


@pytest.mark.django_db(transaction=True)
def test_with_the_cache_down_every_write_publishes(cast, redis_broker, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    rows = [write(cast.member, f"r{i}") for i in range(3)]
    assert queued(redis_broker) == [(TASK, [n.pk]) for n in rows]


@pytest.mark.django_db(transaction=True)
def test_coalescing_off_publishes_one_message_per_notification(cast, redis_broker, settings):
    settings.NOTIFICATIONS_EMAIL_COALESCE_SECONDS = 0
    rows = [write(cast.member, f"r{i}") for i in range(3)]
    assert queued(redis_broker) == [(TASK, [n.pk]) for n in rows]


@pytest.mark.worker
def test_a_real_worker_sends_a_burst_rung_once_in_one_message(cast, start_celery_worker, redis_clean):
    """Written while no worker runs: one message waits; a worker then sends all 30 in one task."""
    rows = [write(cast.member, f"r{i}") for i in range(30)]
    with start_celery_worker(queues=["notifications"]):
        wait_until(lambda: Notification.objects.filter(email_state="sent").count() == 30, "the burst")
        results = TaskResult.objects.filter(task_name=TASK)
        wait_until(lambda: results.filter(status="SUCCESS").exists(), "the result")
        # Then more, written while the worker runs: each goes once, however the writes and the batches interleave.
        more = [write(cast.member, f"m{i}") for i in range(40)]
        wait_until(lambda: Notification.objects.filter(email_state="sent").count() == 70, "the second burst")
    first = json.loads(results.order_by("date_created").first().result)
    assert first["batch"]["sent"] == 30
    ids = sorted(m.extra_headers["Message-ID"] for m in mail.outbox)
    assert ids == sorted(f"<notification-{n.pk}@{services._message_id_domain()}>" for n in rows + more)
