from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tasks_app.models import Project, Status, Task
from tasks_app.tests.factories import TaskFactory, UserFactory
from tests.support.api import api_error_fields, api_errors


@pytest.fixture
def owner_client(cast, api):
    return api(cast.owner)


def _create(client, **body):
    return client.post("/api/v1/tasks/", body, format="json")


class TestValidation:
    def test_unknown_assignee_is_400_on_field(self, cast, owner_client):
        r = _create(owner_client, project=cast.project.pk, title="x", assignee=999999)
        assert r.status_code == 400
        assert "assignee" in api_errors(r)
        assert not Task.objects.exists()

    def test_assignee_not_member_is_400_on_field(self, cast, owner_client):
        r = _create(owner_client, project=cast.project.pk, title="x", assignee=cast.outsider.pk)
        assert r.status_code == 400
        assert "not a member" in api_errors(r)["assignee"][0]
        assert not Task.objects.exists()

    def test_viewer_cannot_be_assignee(self, cast, owner_client):
        r = _create(owner_client, project=cast.project.pk, title="x", assignee=cast.viewer.pk)
        assert r.status_code == 400 and "assignee" in api_errors(r)

    def test_bad_status(self, cast, owner_client):
        r = _create(owner_client, project=cast.project.pk, title="x", status="bogus")
        assert r.status_code == 400 and "status" in api_errors(r)

    @pytest.mark.parametrize("value", ["2026-05-01T09:00:00", "not-a-date", "2026-13-45T00:00:00Z", 12])
    def test_naive_or_invalid_datetime(self, cast, owner_client, value):
        r = _create(owner_client, project=cast.project.pk, title="x", due_at=value)
        assert r.status_code == 400 and "due_at" in api_errors(r)

    def test_aware_datetime_is_stored_in_utc(self, cast, owner_client):
        r = _create(owner_client, project=cast.project.pk, title="x", due_at="2026-05-01T09:00:00+02:00")
        assert r.status_code == 201
        assert Task.objects.get().due_at == datetime(2026, 5, 1, 7, 0, tzinfo=UTC)

    def test_oversized_fields(self, cast, owner_client):
        r = _create(owner_client, project=cast.project.pk, title="x" * 201, description="y" * 20001)
        assert r.status_code == 400
        assert api_error_fields(r) >= {"title", "description"}

    def test_missing_title_and_project(self, owner_client):
        r = _create(owner_client)
        assert r.status_code == 400 and api_error_fields(r) >= {"title", "project"}

    def test_non_json_body_is_400(self, cast, owner_client):
        r = owner_client.post("/api/v1/tasks/", "{not json", content_type="application/json")
        assert r.status_code == 400

    def test_failed_update_is_not_partially_written(self, cast, owner_client):
        task = TaskFactory(project=cast.project, title="Before")
        r = owner_client.patch(
            f"/api/v1/tasks/{task.pk}/", {"title": "After", "assignee": cast.outsider.pk}, format="json"
        )
        assert r.status_code == 400
        task.refresh_from_db()
        assert task.title == "Before" and task.version == 1

    def test_unknown_timezone_on_me(self, api, cast):
        r = api(cast.member).patch("/api/v1/me/", {"timezone": "Mars/Olympus"}, format="json")
        assert r.status_code == 400 and "timezone" in api_errors(r)

    def test_archived_project_rejects_task_writes(self, cast, owner_client):
        Project.objects.filter(pk=cast.project.pk).update(archived=True)
        r = _create(owner_client, project=cast.project.pk, title="x")
        assert r.status_code == 409

    def test_archived_project_refuses_comment_edit_and_delete(self, cast, api):
        """comment_delete had no archived-project check, although comment edits have one."""
        from tasks_app.models import Comment
        from tasks_app.tests.factories import CommentFactory

        task = TaskFactory(project=cast.project)
        comment = CommentFactory(task=task, author=cast.owner, body="keep me")
        Project.objects.filter(pk=cast.project.pk).update(archived=True)
        url = f"/api/v1/tasks/{task.pk}/comments/{comment.pk}/"
        assert api(cast.owner).patch(url, {"body": "changed"}, format="json").status_code == 409
        r = api(cast.owner).delete(url)
        assert r.status_code == 409, r.content
        assert Comment.objects.filter(pk=comment.pk, body="keep me").exists()

    def test_duplicate_member_is_409(self, cast, api):
        r = api(cast.owner).post(
            f"/api/v1/projects/{cast.project.pk}/members/", {"user": cast.member.pk, "role": "viewer"}, format="json"
        )
        assert r.status_code == 409 and "user" in api_errors(r)


class TestBehaviour:
    def test_completed_at_follows_status(self, cast, owner_client):
        task = TaskFactory(project=cast.project)
        r = owner_client.patch(f"/api/v1/tasks/{task.pk}/", {"status": "done"}, format="json")
        assert r.json()["completed_at"] is not None
        r = owner_client.patch(f"/api/v1/tasks/{task.pk}/", {"status": "todo"}, format="json")
        assert r.json()["completed_at"] is None
        r = owner_client.patch(f"/api/v1/tasks/{task.pk}/", {"status": "cancelled"}, format="json")
        assert r.json()["completed_at"] is None

    def test_version_bumps_only_on_real_change(self, cast, owner_client):
        task = TaskFactory(project=cast.project, title="Same")
        assert owner_client.patch(f"/api/v1/tasks/{task.pk}/", {"title": "Same"}, format="json").json()["version"] == 1
        assert owner_client.patch(f"/api/v1/tasks/{task.pk}/", {"title": "New"}, format="json").json()["version"] == 2

    def test_me_roundtrip(self, api, cast):
        r = api(cast.member).patch(
            "/api/v1/me/", {"first_name": "Ada", "timezone": "Asia/Kolkata", "morning_hour": 7}, format="json"
        )
        assert r.status_code == 200
        body = api(cast.member).get("/api/v1/me/").json()
        assert (body["first_name"], body["timezone"], body["morning_hour"]) == ("Ada", "Asia/Kolkata", 7)

    def test_token_auth(self, db, client):
        UserFactory(username="tok")
        r = client.post("/api/v1/auth/token/", {"username": "tok", "password": "pw-123456"})
        token = r.json()["token"]
        r = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token}")
        assert r.status_code == 200 and r.json()["username"] == "tok"

    def test_anonymous_gets_401_with_challenge(self, client, db):
        r = client.get("/api/v1/tasks/")
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Token")


class TestListing:
    @pytest.fixture
    def tasks(self, cast):
        now = timezone.now()
        other = UserFactory(username="zed")
        cast.project.memberships.create(user=other, role="member")
        return {
            "a": TaskFactory(
                project=cast.project,
                title="Alpha report",
                priority=1,
                status=Status.TODO,
                due_at=now + timedelta(days=1),
                assignee=cast.member,
            ),
            "b": TaskFactory(
                project=cast.project,
                title="Beta launch",
                priority=4,
                status=Status.DONE,
                due_at=now + timedelta(days=5),
                assignee=other,
            ),
            "c": TaskFactory(
                project=cast.project,
                title="Gamma REPORT",
                priority=2,
                status=Status.IN_PROGRESS,
                due_at=now - timedelta(days=2),
            ),
            "x": TaskFactory(title="Elsewhere report"),  # another project: never visible
        }

    def _titles(self, client, query):
        return [t["title"] for t in client.get("/api/v1/tasks/" + query).json()["results"]]

    def test_filters(self, cast, owner_client, tasks):
        assert set(self._titles(owner_client, "?status=done")) == {"Beta launch"}
        assert set(self._titles(owner_client, "?status=todo&status=in_progress")) == {"Alpha report", "Gamma REPORT"}
        assert set(self._titles(owner_client, f"?assignee={cast.member.pk}")) == {"Alpha report"}
        assert set(self._titles(owner_client, "?search=report")) == {"Alpha report", "Gamma REPORT"}
        assert set(self._titles(owner_client, f"?project={cast.project.pk}")) == {
            "Alpha report",
            "Beta launch",
            "Gamma REPORT",
        }
        before = (timezone.now() + timedelta(days=2)).isoformat().replace("+00:00", "Z")
        assert set(self._titles(owner_client, f"?due_before={before}")) == {"Alpha report", "Gamma REPORT"}
        assert set(self._titles(owner_client, f"?due_after={before}")) == {"Beta launch"}

    def test_bad_filter_is_400(self, owner_client, tasks):
        assert owner_client.get("/api/v1/tasks/?status=bogus").status_code == 400
        assert owner_client.get("/api/v1/tasks/?due_before=yesterday").status_code == 400
        # Values the database would choke on are refused up front (found by the fuzz suite).
        assert owner_client.get(f"/api/v1/tasks/?project={2**64}").status_code == 400
        assert owner_client.get(f"/api/v1/tasks/?assignee={-(2**64)}").status_code == 400
        assert owner_client.get("/api/v1/tasks/?due_before=0001-01-01T00:00:00%2B20:00").status_code == 400

    def test_datetime_filter_with_a_wide_offset_is_compared_in_utc(self, owner_client, tasks):
        # +18:00 is a legal ISO offset that PostgreSQL would refuse as a parameter; it is converted first.
        far = "2100-01-01T00:00:00%2B18:00"
        assert len(self._titles(owner_client, f"?due_before={far}")) == 3

    def test_ordering(self, owner_client, tasks):
        assert self._titles(owner_client, "?ordering=priority") == ["Alpha report", "Gamma REPORT", "Beta launch"]
        assert self._titles(owner_client, "?ordering=-priority") == ["Beta launch", "Gamma REPORT", "Alpha report"]
        assert self._titles(owner_client, "?ordering=due_at") == ["Gamma REPORT", "Alpha report", "Beta launch"]
        assert self._titles(owner_client, "?ordering=-created_at")[0] == "Gamma REPORT"

    def test_pagination(self, owner_client, tasks):
        body = owner_client.get("/api/v1/tasks/?page_size=2").json()
        assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


def _rich_tasks(cast, n):
    """n tasks with labels, subtasks, blocking relations and comments, like a real board."""
    from tasks_app.models import Label, TaskLabel, TaskRelation
    from tasks_app.tests.factories import CommentFactory

    labels = [Label.objects.create(project=cast.project, name=f"L{i}") for i in range(3)]
    tasks = []
    for i in range(n):
        parent = tasks[i - 1] if i % 3 == 1 else None
        task = TaskFactory(
            project=cast.project, assignee=cast.member if i % 2 else None, created_by=cast.admin, parent=parent
        )
        TaskLabel.objects.create(task=task, label=labels[i % 3])
        if i % 2:
            TaskLabel.objects.create(task=task, label=labels[(i + 1) % 3])
            TaskRelation.objects.create(source=tasks[i - 1], target=task, type="blocks")
            CommentFactory(task=task)
        tasks.append(task)
    return tasks


@pytest.mark.parametrize("n", [5, 50])
def test_task_list_queries_do_not_grow(cast, api, django_assert_num_queries, n):
    _rich_tasks(cast, n)
    client = api(cast.member)
    # 1 fingerprint (COUNT + MAX(updated_at) + the last event id: also the list's ETag) + 1 page (tasks joined
    # with project, assignee, creator; subtask/comment counts and is_blocked as subqueries) + 1 for the page's
    # labels; auth is forced, so no user query.
    with django_assert_num_queries(3):
        r = client.get("/api/v1/tasks/?page_size=50")
    results = r.json()["results"]
    assert len(results) == n
    assert sum(row["is_blocked"] for row in results) == n // 2
    assert sum(row["subtask_count"] for row in results) == len([i for i in range(n) if i % 3 == 1])
    assert sum(len(row["labels"]) for row in results) == n + n // 2


@pytest.mark.parametrize("n", [5, 50])
def test_task_detail_queries_do_not_grow(cast, api, django_assert_num_queries, n):
    tasks = _rich_tasks(cast, n)
    root = tasks[0]
    for task in tasks[1:]:
        Task.objects.filter(pk=task.pk).update(parent=root)
    client = api(cast.member)
    # the task with its counts, then its labels
    with django_assert_num_queries(2):
        body = client.get(f"/api/v1/tasks/{root.pk}/").json()
    assert body["subtask_count"] == n - 1 and len(body["labels"]) == 1


@pytest.mark.parametrize("n", [5, 50])
def test_project_list_queries_do_not_grow(db, api, django_assert_num_queries, n):
    from tasks_app.tests.factories import ProjectFactory

    user = UserFactory(username="many")
    for _ in range(n):
        ProjectFactory(owner=user)
    with django_assert_num_queries(2):
        r = api(user).get("/api/v1/projects/?page_size=50")
    assert r.json()["count"] == n
