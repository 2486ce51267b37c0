"""recurring.instance_created: one delivery per instance and subscription, written per batch."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks_app.models import Task
from tasks_app.recurring.engine import recurring_process_due
from tasks_app.tests.recurring_helpers import make_template
from webhooks.models import WebhookDelivery
from webhooks.tests.factories import SubscriptionFactory


def _due_templates(cast, n):
    # The first occurrence is in an hour, and a day of lead time makes its instance due now.
    start = timezone.now().replace(microsecond=0) + timedelta(hours=1)
    for i in range(n):
        make_template(
            cast, title=f"Daily {i}", rrule="FREQ=DAILY", timezone="UTC", dtstart=start, lead_time=timedelta(days=1)
        )


def _tick():
    with CaptureQueriesContext(connection) as ctx:
        recurring_process_due(now=timezone.now())
    return len([q for q in ctx.captured_queries if "webhooks_" in q["sql"]])


@pytest.mark.parametrize("n", [3, 30])
def test_one_delivery_per_instance_and_subscription_with_constant_queries(cast, n):
    wanted = SubscriptionFactory(project=cast.project, events=["recurring.instance_created"])
    SubscriptionFactory(project=cast.project, events=["task.created"])  # does not want it
    _due_templates(cast, n)
    webhook_queries = _tick()
    instances = Task.objects.filter(recurring_template__isnull=False)
    assert instances.count() == n
    deliveries = WebhookDelivery.objects.filter(event_type="recurring.instance_created")
    assert deliveries.count() == n and set(deliveries.values_list("subscription_id", flat=True)) == {wanted.pk}
    assert webhook_queries <= 2  # one subscription lookup + one bulk insert, whatever n is


def test_a_batch_nobody_subscribed_to_builds_no_payload(cast):
    from webhooks.services import trigger_webhooks

    SubscriptionFactory(project=cast.project, events=["task.created"])  # another type only
    calls = []

    def events():
        calls.append(1)
        return [(cast.project.pk, {"n": 1})]

    assert trigger_webhooks(event_type="recurring.instance_created", events=events, project_ids={cast.project.pk}) == []
    assert calls == []
    wanted = SubscriptionFactory(project=cast.project, events=["recurring.instance_created"])
    ids = trigger_webhooks(event_type="recurring.instance_created", events=events, project_ids={cast.project.pk})
    assert calls == [1]
    assert list(WebhookDelivery.objects.filter(pk__in=ids).values_list("subscription_id", flat=True)) == [wanted.pk]
