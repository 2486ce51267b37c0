"""The event log: one row per change in the change's transaction, the activity endpoint, retention."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks_app.models import Event, Membership, Role
from tasks_app.services.comments import comment_create, comment_delete, comment_update
from tasks_app.services.events import events_cleanup
from tasks_app.services.projects import membership_add, membership_remove, membership_update, project_update
from tasks_app.services.tasks import task_create, task_delete, task_update
from tasks_app.tests.factories import UserFactory


def _types(task_id):
    return list(Event.objects.filter(task_id=task_id).order_by("id").values_list("type", flat=True))


def test_task_lifecycle_writes_one_event_per_change(cast):
    task = task_create(actor=cast.member, project=cast.project, title="Write", priority=2)
    task_update(task=task, actor=cast.member, data={"title": "Write it", "assignee": cast.member})
    task_update(task=task, actor=cast.member, data={"title": "Write it"})  # no change, no event
    comment = comment_create(task=task, actor=cast.member, body="first")
    comment_update(comment=comment, actor=cast.member, body="second")
    comment_delete(comment=comment, actor=cast.member)
    task_delete(task=task, actor=cast.member)
    assert _types(task.pk) == [
        "task.created",
        "task.updated",
        "comment.created",
        "comment.updated",
        "comment.deleted",
        "task.deleted",
    ]
    update = Event.objects.get(task_id=task.pk, type="task.updated")
    assert update.actor_id == cast.member.pk and update.project_id == cast.project.pk
    assert update.data["changes"] == {"title": ["Write", "Write it"], "assignee": [None, cast.member.pk]}
    edited = Event.objects.get(task_id=task.pk, type="comment.updated")
    assert edited.data["changes"] == {"body": ["first", "second"]}


def test_completion_records_status_and_completed_at(cast):
    task = task_create(actor=cast.member, project=cast.project, title="Ship")
    task_update(task=task, actor=cast.member, data={"status": "done"})
    changes = Event.objects.get(task_id=task.pk, type="task.updated").data["changes"]
    assert changes["status"] == ["todo", "done"]
    assert changes["completed_at"][0] is None and changes["completed_at"][1]


def test_refused_change_leaves_no_event(cast, api):
    task = task_create(actor=cast.member, project=cast.project, title="Keep")
    r = api(cast.owner).patch(f"/api/v1/tasks/{task.pk}/", {"title": "x", "assignee": cast.outsider.pk}, format="json")
    assert r.status_code == 400
    assert _types(task.pk) == ["task.created"]


def test_project_and_membership_events(cast):
    newcomer = UserFactory(username="newcomer")
    project_update(project=cast.project, actor=cast.owner, data={"name": "Gemini", "description": ""})
    membership = membership_add(project=cast.project, actor=cast.owner, user=newcomer, role=Role.MEMBER)
    membership_update(membership=membership, actor=cast.owner, role=Role.VIEWER)
    membership_remove(membership=Membership.objects.get(pk=membership.pk), actor=cast.owner)
    rows = list(Event.objects.filter(project=cast.project, task_id=None).order_by("id").values_list("type", "data"))
    assert rows == [
        ("project.updated", {"changes": {"name": ["Apollo", "Gemini"]}}),
        ("member.added", {"user": newcomer.pk, "changes": {"role": [None, "member"]}}),
        ("member.updated", {"user": newcomer.pk, "changes": {"role": ["member", "viewer"]}}),
        ("member.removed", {"user": newcomer.pk, "changes": {"role": ["viewer", None]}}),
    ]


class TestActivityEndpoint:
    def test_newest_first_with_actor_and_changes(self, cast, api):
        task = task_create(actor=cast.member, project=cast.project, title="A")
        task_update(task=task, actor=cast.admin, data={"priority": 4})
        comment_create(task=task, actor=cast.owner, body="looks good")
        r = api(cast.viewer).get(f"/api/v1/tasks/{task.pk}/activity/")
        assert r.status_code == 200
        results = r.json()["results"]
        assert [e["type"] for e in results] == ["comment.created", "task.updated", "task.created"]
        assert results[1]["actor"]["username"] == "admin"
        assert results[1]["data"] == {"changes": {"priority": [2, 4]}}
        assert results[0]["task"] == task.pk and results[0]["project"] == cast.project.pk

    def test_cursor_pages_cover_every_event_once(self, cast, api):
        task = task_create(actor=cast.member, project=cast.project, title="A")
        for priority in (1, 3, 4, 2, 1):
            task_update(task=task, actor=cast.member, data={"priority": priority})
        client = api(cast.member)
        url, seen = f"/api/v1/tasks/{task.pk}/activity/?page_size=2", []
        while url:
            body = client.get(url).json()
            assert len(body["results"]) <= 2
            seen += [e["id"] for e in body["results"]]
            url = body["next"]
        expected = list(Event.objects.filter(task_id=task.pk).order_by("-id").values_list("id", flat=True))
        assert seen == expected and len(seen) == 6

    def test_outsider_gets_404(self, cast, api):
        task = task_create(actor=cast.member, project=cast.project, title="A")
        assert api(cast.outsider).get(f"/api/v1/tasks/{task.pk}/activity/").status_code == 404

    @pytest.mark.parametrize("events", [3, 30])
    def test_constant_queries(self, cast, api, django_assert_num_queries, events):
        task = task_create(actor=cast.member, project=cast.project, title="A")
        for i in range(events - 1):
            task_update(task=task, actor=cast.member, data={"title": f"A{i}"})
        client = api(cast.member)
        # the task's visibility, then the page of events joined with their actors
        with django_assert_num_queries(2):
            assert len(client.get(f"/api/v1/tasks/{task.pk}/activity/").json()["results"]) == events


def test_retention_cleanup_deletes_only_old_rows(cast, settings):
    task = task_create(actor=cast.member, project=cast.project, title="A")
    old = Event.objects.create(project=cast.project, task_id=task.pk, type="task.updated")
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
    assert events_cleanup(batch_size=1) == 1
    assert _types(task.pk) == ["task.created"]
    settings.EVENT_RETENTION_DAYS = 0  # keep forever
    Event.objects.filter(task_id=task.pk).update(created_at=timezone.now() - timedelta(days=4000))
    assert events_cleanup() == 0
