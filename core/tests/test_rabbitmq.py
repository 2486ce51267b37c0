"""RabbitMQ as the broker (`make test-rabbitmq`, TEST_BROKER_URL=amqp://…): quorum queues, publisher
confirms, countdowns through native delayed delivery, and a dead consumer's messages back at once."""

import pytest
from django.conf import settings
from django_celery_results.models import TaskResult

from core.enqueue import publish_now_rollback_unsafe
from tests.support import wait_until

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(not settings.BROKER_IS_AMQP, reason="runs when TEST_BROKER_URL names a RabbitMQ vhost"),
]


def test_every_queue_is_a_quorum_queue_on_a_topic_exchange_and_publishes_are_confirmed(celery_app):
    conf = celery_app.conf
    assert conf.broker_transport_options["confirm_publish"] is True
    assert {q.name for q in conf.task_queues} == set(settings.QUEUE_NAMES)
    for queue in conf.task_queues:
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
        assert queue.exchange.type == "topic" and queue.routing_key == queue.name


def test_queues_exist_on_the_broker_as_quorum_queues(redis_clean, celery_app):
    # Re-declaring a quorum queue as classic is refused by RabbitMQ (PRECONDITION_FAILED), so this proves
    # the type the broker holds.
    from amqp.exceptions import PreconditionFailed
    from kombu import Exchange, Queue

    with celery_app.connection_for_write() as conn:
        channel = conn.channel()
        with pytest.raises(PreconditionFailed):
            Queue("notifications", Exchange("notifications", type="topic"), routing_key="notifications")(
                channel
            ).declare()


def test_countdown_goes_through_native_delayed_delivery(celery_worker):
    assert publish_now_rollback_unsafe("core.ping", countdown=0.4)  # rounded up to 1 s, never 0
    wait_until(lambda: TaskResult.objects.filter(task_name="core.ping", status="SUCCESS").exists(), "the result")
