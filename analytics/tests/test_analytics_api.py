from datetime import timedelta

import pytest
import time_machine

from analytics import metrics, services
from analytics.models import AnalyticsSnapshot
from analytics.tests.conftest import NOW
from tasks_app.models import Status, Task
from tasks_app.tests.factories import TaskFactory


def test_me_computes_on_demand_then_serves_the_snapshot(crafted, api, settings):
    settings.ANALYTICS_SNAPSHOT_MAX_AGE = timedelta(minutes=60)
    client = api(crafted.alice)
    with time_machine.travel(NOW, tick=False):
        body = client.get("/api/v1/analytics/me/").json()
    assert body["scope"] == "user" and body["user"] == crafted.alice.pk
    assert body["computed_at"] == "2026-03-15T12:00:00Z"
    assert body["metrics"]["created"] == 6 and body["metrics"]["completion_rate"] == 0.8
    assert body["metrics"]["cycle_time_seconds"] == {"median": 5400.0, "p90": 27360.0, "sample_size": 4}

    Task.objects.filter(assignee=crafted.alice, status=Status.TODO).update(status=Status.DONE)
    with time_machine.travel(NOW + timedelta(minutes=59), tick=False):
        served = client.get("/api/v1/analytics/me/").json()
    assert served["computed_at"] == body["computed_at"] and served["metrics"]["open"] == 1  # the snapshot

    with time_machine.travel(NOW + timedelta(minutes=61), tick=False):
        fresh = client.get("/api/v1/analytics/me/").json()
    assert fresh["computed_at"] == "2026-03-15T13:01:00Z" and fresh["metrics"]["open"] == 0
    assert AnalyticsSnapshot.objects.filter(user=crafted.alice).count() == 1


def test_project_analytics_for_members_only(cast, api):
    TaskFactory(project=cast.project, status=Status.DONE, assignee=cast.member)
    url = f"/api/v1/analytics/projects/{cast.project.pk}/"
    for who in ("owner", "admin", "member", "viewer", "staff"):
        r = api(cast.user(who)).get(url)
        assert r.status_code == 200, who
        assert r.json()["metrics"]["completed"] == 1 and r.json()["metrics"]["by_assignee"][0]["username"] == "member"
    assert api(cast.outsider).get(url).status_code == 404
    assert api(cast.outsider).get("/api/v1/analytics/projects/999999/").status_code == 404
    assert api().get(url).status_code == 401


def test_project_endpoint_serves_a_fresh_precomputed_snapshot(crafted, api):
    snapshot = services.analytics_project_refresh(project_id=crafted.project.pk)
    AnalyticsSnapshot.objects.filter(pk=snapshot.pk).update(data={**snapshot.data, "created": 12345})
    body = api(crafted.bob).get(f"/api/v1/analytics/projects/{crafted.project.pk}/").json()
    assert body["metrics"]["created"] == 12345  # served as stored, not recomputed
    assert body["computed_at"].startswith(snapshot.computed_at.strftime("%Y-%m-%dT%H:%M:%S"))


def test_an_older_computation_never_overwrites_a_newer_snapshot(crafted):
    services.analytics_project_refresh(project_id=crafted.project.pk, now=NOW)
    services.analytics_project_refresh(project_id=crafted.project.pk, now=NOW - timedelta(minutes=5))
    snapshot = AnalyticsSnapshot.objects.get(project=crafted.project)
    assert snapshot.computed_at == NOW and snapshot.data == metrics.project_metrics(
        project_id=crafted.project.pk, now=NOW
    )


@pytest.mark.parametrize("scope", ["user", "project"])
def test_tasks_skip_missing_targets(db, scope):
    from analytics import tasks

    fn = tasks.compute_user_analytics if scope == "user" else tasks.compute_project_analytics
    assert fn(999999) == {scope: 999999, "computed": False}
    assert not AnalyticsSnapshot.objects.exists()


def test_serving_a_fresh_snapshot_is_one_query(crafted, api, django_assert_num_queries):
    services.analytics_user_refresh(user_id=crafted.alice.pk)
    services.analytics_project_refresh(project_id=crafted.project.pk)
    client = api(crafted.alice)
    with django_assert_num_queries(1):
        assert client.get("/api/v1/analytics/me/").status_code == 200
    with django_assert_num_queries(2):  # visibility (project_get) + snapshot
        assert client.get(f"/api/v1/analytics/projects/{crafted.project.pk}/").status_code == 200


def test_schema_documents_download_url_as_nullable(db):
    # Found by schemathesis: a pending export answers download_url=null, which the schema used to forbid.
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert schema["components"]["schemas"]["ExportOutput"]["properties"]["download_url"]["nullable"] is True
