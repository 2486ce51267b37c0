"""trigger_webhooks writes its delivery rows with core.bulk.insert_many (one INSERT ... unnest() on PostgreSQL):
every column as a model instance's defaults would give it, and the rows in order."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.bulk import insert_many
from tasks_app.tests.factories import ProjectFactory
from webhooks.models import Event, WebhookDelivery
from webhooks.services import trigger_webhooks
from webhooks.tests.factories import SubscriptionFactory


def test_trigger_rows_carry_every_default_and_one_insert(db, django_capture_on_commit_callbacks):
    first, second = ProjectFactory(), ProjectFactory()
    subs = [SubscriptionFactory(project=first) for _ in range(3)] + [SubscriptionFactory(project=second)]
    SubscriptionFactory(project=first, is_active=False)
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks():
        with transaction.atomic():
            ids = trigger_webhooks(
                event_type=Event.TASK_CREATED,
                events=[(first.pk, {"task": {"id": 1, "title": "ünï"}}), (second.pk, {"task": {"id": 2}})],
            )
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    if connection.vendor == "postgresql":
        assert "unnest(" in inserts[0]
    rows = list(WebhookDelivery.objects.filter(pk__in=ids).order_by("pk"))
    assert [r.pk for r in rows] == sorted(ids) and len(ids) == 4
    assert sorted(r.subscription_id for r in rows) == sorted(s.pk for s in subs)
    fresh = WebhookDelivery()  # what a model instance's defaults give
    for row in rows:
        assert (row.state, row.attempts, row.last_error, row.claim_token) == (
            fresh.state,
            fresh.attempts,
            fresh.last_error,
            fresh.claim_token,
        )
        assert row.next_attempt_at is row.delivered_at is row.finished_at is row.lease_until is None
        assert row.enqueued_at is None and row.redelivery_of_id is None and row.last_status_code is None
        assert row.event_type == Event.TASK_CREATED and row.webhook_id.startswith("msg_")
        assert abs((timezone.now() - row.created_at).total_seconds()) < 60
        project_id = first.pk if row.subscription_id != subs[-1].pk else second.pk
        assert ('"id":1' in row.body) == (project_id == first.pk) and '"type":"task.created"' in row.body
    assert len({r.webhook_id for r in rows}) == 4
    assert "ünï" in rows[0].body


def test_insert_many_refuses_a_per_call_default_it_was_not_given(db):
    with pytest.raises(ValueError, match="webhook_id"):
        insert_many(WebhookDelivery, common={"event_type": "x", "created_at": timezone.now()}, varying={"body": ["{}"]})
    with pytest.raises(ValueError, match="one value per row"):
        insert_many(WebhookDelivery, common={}, varying={"body": ["{}"], "webhook_id": []})
    with pytest.raises(ValueError, match="no field nope"):
        insert_many(WebhookDelivery, common={"nope": 1}, varying={"body": ["{}"]})
    assert insert_many(WebhookDelivery, common={}, varying={"body": []}) == []
