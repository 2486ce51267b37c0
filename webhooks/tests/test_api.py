import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support.api import api_error_fields, api_errors
from webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookSubscription
from webhooks.tests.factories import DeliveryFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
URL = "http://127.0.0.1:9/hook"


def _create(client, project, **extra):
    return client.post(
        "/api/v1/webhooks/", {"project": project.pk, "url": URL, "events": ["task.created"], **extra}, format="json"
    )


class TestSubscriptions:
    @pytest.mark.parametrize("who", ["owner", "admin"])
    def test_managers_create_and_see_secret_once(self, cast, api, who):
        client = api(cast.user(who))
        r = _create(client, cast.project, description="CI")
        assert r.status_code == 201, r.content
        body = r.json()
        assert body["secret"].startswith("whsec_")
        assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) == 32
        sub = WebhookSubscription.objects.get()
        assert body["secret"] == f"whsec_{sub.secret}" and sub.created_by == cast.user(who)
        detail = client.get(f"/api/v1/webhooks/{sub.pk}/").json()
        listing = client.get("/api/v1/webhooks/").json()
        assert "secret" not in detail and "secret" not in listing["results"][0]
        assert sub.secret not in str(detail) + str(listing)

    @pytest.mark.parametrize("who", ["member", "viewer"])
    def test_members_and_viewers_are_forbidden(self, cast, api, who):
        sub = SubscriptionFactory(project=cast.project)
        d = DeliveryFactory(subscription=sub, state=DeliveryState.DELIVERED)
        client = api(cast.user(who))
        assert _create(client, cast.project).status_code == 403
        assert client.get("/api/v1/webhooks/").json()["results"] == []
        base = f"/api/v1/webhooks/{sub.pk}/"
        assert client.get(base).status_code == 403
        assert client.patch(base, {"description": "x"}, format="json").status_code == 403
        assert client.delete(base).status_code == 403
        for path in ("rotate-secret/", "ping/", f"deliveries/{d.pk}/redeliver/"):
            assert client.post(base + path).status_code == 403
        for path in ("deliveries/", f"deliveries/{d.pk}/"):
            assert client.get(base + path).status_code == 403
        assert WebhookSubscription.objects.filter(pk=sub.pk, description="").exists()

    def test_outsiders_get_404_and_cannot_create(self, cast, api):
        sub = SubscriptionFactory(project=cast.project)
        d = DeliveryFactory(subscription=sub, state=DeliveryState.DELIVERED)
        client = api(cast.outsider)
        r = _create(client, cast.project)
        assert r.status_code == 400 and "project" in api_errors(r)
        base = f"/api/v1/webhooks/{sub.pk}/"
        assert client.get(base).status_code == 404
        assert client.patch(base, {"description": "x"}, format="json").status_code == 404
        assert client.delete(base).status_code == 404
        for path in ("rotate-secret/", "ping/", f"deliveries/{d.pk}/redeliver/"):
            assert client.post(base + path).status_code == 404
        for path in ("deliveries/", f"deliveries/{d.pk}/"):
            assert client.get(base + path).status_code == 404
        assert client.get("/api/v1/webhooks/").json()["results"] == []

    def test_list_is_paginated_and_query_bounded(self, cast, api, django_assert_num_queries):
        from tasks_app.tests.factories import ProjectFactory

        for _ in range(4):
            SubscriptionFactory(project=cast.project)
        SubscriptionFactory(project=ProjectFactory())  # not the caller's
        with django_assert_num_queries(2):  # count, page (project ids only, no per-row queries)
            r = api(cast.admin).get("/api/v1/webhooks/?page_size=3")
        assert r.json()["count"] == 4 and len(r.json()["results"]) == 3
        assert api(cast.admin).get(f"/api/v1/webhooks/?project={cast.project.pk + 999}").json()["count"] == 0

    @pytest.mark.parametrize("value", ["3356614784361393815552", "abc", "0"])
    def test_project_filter_out_of_range_or_garbage_is_400(self, cast, api, value):
        r = api(cast.admin).get(f"/api/v1/webhooks/?project={value}")  # the huge id used to be a 500 (overflow)
        assert r.status_code == 400 and "project" in api_errors(r)

    def test_anonymous_is_401(self, api):
        assert api().get("/api/v1/webhooks/").status_code == 401

    def test_validation_errors_are_field_level(self, cast, api):
        client = api(cast.owner)
        r = client.post(
            "/api/v1/webhooks/", {"project": cast.project.pk, "url": "", "events": ["task.exploded"]}, format="json"
        )
        assert r.status_code == 400 and {"url", "events"} <= api_error_fields(r)
        r = client.post("/api/v1/webhooks/", {"project": cast.project.pk, "url": URL, "events": []}, format="json")
        assert r.status_code == 400 and "events" in api_errors(r)
        r = client.post("/api/v1/webhooks/", {"url": URL, "events": "task.created"}, format="json")
        assert r.status_code == 400 and {"project", "events"} <= api_error_fields(r)
        assert not WebhookSubscription.objects.exists()

    def test_update_and_delete(self, cast, api):
        client = api(cast.admin)
        sub = SubscriptionFactory(project=cast.project, consecutive_failures=3, is_active=False)
        r = client.patch(
            f"/api/v1/webhooks/{sub.pk}/",
            {"events": ["task.updated", "task.created"], "is_active": True},
            format="json",
        )
        assert r.status_code == 200 and r.json()["events"] == ["task.created", "task.updated"]
        sub.refresh_from_db()
        assert sub.is_active and sub.consecutive_failures == 0
        assert client.delete(f"/api/v1/webhooks/{sub.pk}/").status_code == 204
        assert not WebhookSubscription.objects.exists()

    def test_rotate_secret_returns_new_secret_and_grace(self, cast, api):
        sub = SubscriptionFactory(project=cast.project)
        old = sub.secret
        r = api(cast.owner).post(f"/api/v1/webhooks/{sub.pk}/rotate-secret/", {}, format="json")
        assert r.status_code == 200
        sub.refresh_from_db()
        assert r.json()["secret"] == f"whsec_{sub.secret}" and sub.secret != old and sub.previous_secret == old
        expected = timezone.now() + timedelta(hours=24)
        assert abs((sub.previous_secret_expires_at - expected).total_seconds()) < 60
        assert sub.signing_secrets() == [sub.secret, old]
        r = api(cast.owner).post(f"/api/v1/webhooks/{sub.pk}/rotate-secret/", {"grace_period_hours": 0}, format="json")
        sub.refresh_from_db()
        assert r.status_code == 200 and sub.signing_secrets() == [sub.secret]
        r = api(cast.owner).post(f"/api/v1/webhooks/{sub.pk}/rotate-secret/", {"grace_period_hours": -1}, format="json")
        assert r.status_code == 400 and "grace_period_hours" in api_errors(r)

    def test_ping_queues_a_test_event(self, cast, api):
        sub = SubscriptionFactory(project=cast.project, events=["task.created"])
        r = api(cast.owner).post(f"/api/v1/webhooks/{sub.pk}/ping/")
        assert r.status_code == 202 and r.json()["event_type"] == "webhook.ping"
        assert WebhookDelivery.objects.get().payload_json["data"]["subscription_id"] == sub.pk
        sub.is_active = False
        sub.save()
        assert api(cast.owner).post(f"/api/v1/webhooks/{sub.pk}/ping/").status_code == 409


class TestDeliveryLog:
    def test_list_is_paginated_filtered_and_query_bounded(self, cast, api, django_assert_num_queries):
        sub = SubscriptionFactory(project=cast.project)
        for state in [DeliveryState.DELIVERED] * 5 + [DeliveryState.FAILED] * 2:
            DeliveryFactory(subscription=sub, state=state)
        DeliveryFactory(subscription=SubscriptionFactory(project=cast.project))
        client = api(cast.owner)
        with django_assert_num_queries(4):  # subscription, role, count, page
            r = client.get(f"/api/v1/webhooks/{sub.pk}/deliveries/?page_size=3")
        assert r.status_code == 200 and r.json()["count"] == 7 and len(r.json()["results"]) == 3
        r = client.get(f"/api/v1/webhooks/{sub.pk}/deliveries/?state=failed")
        assert r.json()["count"] == 2 and {d["state"] for d in r.json()["results"]} == {"failed"}
        r = client.get(f"/api/v1/webhooks/{sub.pk}/deliveries/?state=bogus")
        assert r.status_code == 400 and "state" in api_errors(r)

    def test_detail_shows_attempts_with_truncated_body(self, cast, api):
        d = DeliveryFactory(subscription=SubscriptionFactory(project=cast.project), attempts=2)
        WebhookAttempt.objects.create(
            delivery=d,
            attempt=1,
            started_at=timezone.now(),
            status_code=500,
            error_class="HTTP 500",
            response_body="boom",
            duration_ms=12,
        )
        WebhookAttempt.objects.create(delivery=d, attempt=2, started_at=timezone.now(), error_class="ConnectError")
        r = api(cast.admin).get(f"/api/v1/webhooks/{d.subscription_id}/deliveries/{d.pk}/")
        assert r.status_code == 200
        log = r.json()["attempt_log"]
        assert [(a["attempt"], a["status_code"], a["error_class"]) for a in log] == [
            (1, 500, "HTTP 500"),
            (2, None, "ConnectError"),
        ]
        assert log[0]["response_body"] == "boom" and r.json()["payload"]["type"] == "task.created"

    def test_delivery_of_another_subscription_is_404(self, cast, api):
        sub = SubscriptionFactory(project=cast.project)
        other = DeliveryFactory(subscription=SubscriptionFactory(project=cast.project))
        assert api(cast.owner).get(f"/api/v1/webhooks/{sub.pk}/deliveries/{other.pk}/").status_code == 404

    def test_redeliver_copies_body_and_webhook_id(self, cast, api):
        d = DeliveryFactory(subscription=SubscriptionFactory(project=cast.project), state=DeliveryState.FAILED)
        r = api(cast.owner).post(f"/api/v1/webhooks/{d.subscription_id}/deliveries/{d.pk}/redeliver/")
        assert r.status_code == 202
        copy = WebhookDelivery.objects.get(pk=r.json()["id"])
        assert (copy.webhook_id, copy.body, copy.redelivery_of_id, copy.state) == (
            d.webhook_id,
            d.body,
            d.pk,
            DeliveryState.PENDING,
        )
        again = api(cast.owner).post(f"/api/v1/webhooks/{d.subscription_id}/deliveries/{copy.pk}/redeliver/")
        assert again.status_code == 409
