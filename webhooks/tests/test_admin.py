"""Webhook admin: subscriptions through the service (SSRF check included), deliveries read-only with
search by webhook-id, filters and a redeliver action."""

import pytest

from webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookSubscription
from webhooks.tests.factories import DeliveryFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    """A superuser who is not a member of any project (the cast already has a user named "admin")."""
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.test", "pw"))
    return client


def _sub_form(sub=None, **changes):
    data = {"url": "http://93.184.216.34/hook", "events": '["task.created"]', "description": "", "is_active": "on"}
    if sub is not None:
        data.update(url=sub.url, events=str(sub.events).replace("'", '"'), description=sub.description)
    data.update(changes)
    return data


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/", "http://10.0.0.1/", "http://[fec0::1]/", "ftp://x/"])
def test_admin_change_refuses_an_unsafe_url(cast, admin_client, settings, url):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    sub = SubscriptionFactory(project=cast.project, url="http://93.184.216.34/hook", events=["task.created"])
    r = admin_client.post(f"/admin/webhooks/webhooksubscription/{sub.pk}/change/", _sub_form(sub, url=url))
    assert r.status_code == 200 and "errorlist" in r.content.decode()
    sub.refresh_from_db()
    assert sub.url == "http://93.184.216.34/hook"


def test_admin_add_refuses_an_unsafe_url_and_unknown_events(cast, admin_client, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    form = _sub_form(project=cast.project.pk, url="http://127.0.0.1:9/hook")
    assert admin_client.post("/admin/webhooks/webhooksubscription/add/", form).status_code == 200
    form = _sub_form(project=cast.project.pk, events='["task.exploded"]')
    assert admin_client.post("/admin/webhooks/webhooksubscription/add/", form).status_code == 200
    assert not WebhookSubscription.objects.exists()


def test_admin_add_goes_through_the_service(cast, admin_client):
    form = _sub_form(project=cast.project.pk, events='["task.updated", "task.created", "task.created"]')
    r = admin_client.post("/admin/webhooks/webhooksubscription/add/", form, follow=True)
    assert r.status_code == 200
    sub = WebhookSubscription.objects.get()
    assert sub.events == ["task.created", "task.updated"]  # normalized by the service
    assert len(sub.secret) == 44 and sub.created_by.username == "root"
    assert "whsec_" in r.content.decode()  # shown once, as the API does on create


def test_delivery_admin_is_read_only_searchable_and_titled(cast, admin_client):
    sub = SubscriptionFactory(project=cast.project)
    d = DeliveryFactory(subscription=sub, state=DeliveryState.FAILED, attempts=3)
    other = DeliveryFactory(subscription=sub)
    WebhookAttempt.objects.create(delivery=d, attempt=1, status_code=500, success=False, started_at=d.created_at)

    index = admin_client.get("/admin/webhooks/").content.decode().lower()
    assert "webhook deliveries" in index and "webhook deliverys" not in index
    page = admin_client.get("/admin/webhooks/webhookdelivery/")
    assert page.status_code == 200
    assert 'href="/admin/webhooks/webhookdelivery/add/"' not in page.content.decode()

    found = admin_client.get("/admin/webhooks/webhookdelivery/", {"q": d.webhook_id})
    assert list(found.context["cl"].result_list) == [d]
    failed = admin_client.get("/admin/webhooks/webhookdelivery/", {"state__exact": "failed"})
    assert list(failed.context["cl"].result_list) == [d]
    assert other not in failed.context["cl"].result_list

    change = admin_client.get(f"/admin/webhooks/webhookdelivery/{d.pk}/change/")
    assert change.status_code == 200
    body = change.content.decode()
    assert 'name="state"' not in body and 'name="attempts"' not in body  # nothing editable
    assert 'name="attempt_log-MAX_NUM_FORMS" value="0"' in body  # attempts listed, no "add attempt" row
    r = admin_client.post(f"/admin/webhooks/webhookdelivery/{d.pk}/change/", {"state": "delivered", "attempts": 0})
    assert r.status_code == 403
    d.refresh_from_db()
    assert (d.state, d.attempts) == (DeliveryState.FAILED, 3)
    assert admin_client.get("/admin/webhooks/webhookdelivery/add/").status_code == 403


def test_redeliver_action_goes_through_the_service(cast, admin_client):
    sub = SubscriptionFactory(project=cast.project)
    d = DeliveryFactory(subscription=sub, state=DeliveryState.FAILED, attempts=3)
    pending = DeliveryFactory(subscription=sub)
    r = admin_client.post(
        "/admin/webhooks/webhookdelivery/",
        {"action": "redeliver", "_selected_action": [d.pk, pending.pk]},
        follow=True,
    )
    assert r.status_code == 200
    copy = WebhookDelivery.objects.get(redelivery_of=d)
    assert copy.webhook_id == d.webhook_id and copy.body == d.body and copy.state == DeliveryState.PENDING
    assert not WebhookDelivery.objects.filter(redelivery_of=pending).exists()  # the service refuses pending
    messages = [str(m) for m in r.context["messages"]]
    assert any("Redelivery queued" in m for m in messages) and any("still pending" in m for m in messages)
