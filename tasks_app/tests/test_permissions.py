"""The permission matrix: every endpoint x anonymous / outsider / viewer / member / admin / owner / staff."""

import pytest

from tasks_app.models import Comment, Membership, Project, Role, Task
from tasks_app.tests.factories import CommentFactory, MembershipFactory, TaskFactory, UserFactory
from tests.support.api import api_errors

ROLES = ["anonymous", "outsider", "viewer", "member", "admin", "owner", "staff"]


def _setup(cast):
    task = TaskFactory(project=cast.project, created_by=cast.owner)
    comment = CommentFactory(task=task, author=cast.owner)
    extra = MembershipFactory(project=cast.project, user=UserFactory(username="extra"), role=Role.MEMBER).user
    newcomer = UserFactory(username="newcomer")
    return {"p": cast.project.pk, "t": task.pk, "c": comment.pk, "extra": extra.pk, "new": newcomer.pk}


# (method, url, body, expected status per role in ROLES order)
MATRIX = [
    ("get", "/api/v1/projects/", None, [401, 200, 200, 200, 200, 200, 200]),
    ("post", "/api/v1/projects/", {"name": "New"}, [401, 201, 201, 201, 201, 201, 201]),
    ("get", "/api/v1/projects/{p}/", None, [401, 404, 200, 200, 200, 200, 200]),
    ("patch", "/api/v1/projects/{p}/", {"name": "Renamed"}, [401, 404, 403, 403, 200, 200, 200]),
    ("put", "/api/v1/projects/{p}/", {"name": "Renamed", "description": "d"}, [401, 404, 403, 403, 200, 200, 200]),
    ("delete", "/api/v1/projects/{p}/", None, [401, 404, 403, 403, 403, 204, 204]),
    ("get", "/api/v1/projects/{p}/members/", None, [401, 404, 200, 200, 200, 200, 200]),
    ("post", "/api/v1/projects/{p}/members/", {"user": "{new}", "role": "member"}, [401, 404, 403, 403, 201, 201, 201]),
    ("patch", "/api/v1/projects/{p}/members/{extra}/", {"role": "viewer"}, [401, 404, 403, 403, 200, 200, 200]),
    ("delete", "/api/v1/projects/{p}/members/{extra}/", None, [401, 404, 403, 403, 204, 204, 204]),
    ("get", "/api/v1/tasks/", None, [401, 200, 200, 200, 200, 200, 200]),
    ("post", "/api/v1/tasks/", {"project": "{p}", "title": "T"}, [401, 400, 403, 201, 201, 201, 201]),
    ("get", "/api/v1/tasks/{t}/", None, [401, 404, 200, 200, 200, 200, 200]),
    ("patch", "/api/v1/tasks/{t}/", {"title": "Edited"}, [401, 404, 403, 200, 200, 200, 200]),
    ("put", "/api/v1/tasks/{t}/", {"title": "Edited"}, [401, 404, 403, 200, 200, 200, 200]),
    ("delete", "/api/v1/tasks/{t}/", None, [401, 404, 403, 403, 204, 204, 204]),
    ("get", "/api/v1/tasks/{t}/comments/", None, [401, 404, 200, 200, 200, 200, 200]),
    ("post", "/api/v1/tasks/{t}/comments/", {"body": "hi"}, [401, 404, 403, 201, 201, 201, 201]),
    ("get", "/api/v1/tasks/{t}/comments/{c}/", None, [401, 404, 200, 200, 200, 200, 200]),
    ("patch", "/api/v1/tasks/{t}/comments/{c}/", {"body": "edit"}, [401, 404, 403, 403, 403, 200, 403]),
    ("delete", "/api/v1/tasks/{t}/comments/{c}/", None, [401, 404, 403, 403, 204, 204, 204]),
    ("get", "/api/v1/me/", None, [401, 200, 200, 200, 200, 200, 200]),
    ("patch", "/api/v1/me/", {"timezone": "Europe/Berlin"}, [401, 200, 200, 200, 200, 200, 200]),
]


def _fill(value, ids):
    if isinstance(value, str):
        filled = value.format(**ids)
        return int(filled) if value.startswith("{") and filled.isdigit() else filled
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


CASES = [
    pytest.param(method, url, body, role, expected[i], id=f"{method}-{url}-{role}")
    for method, url, body, expected in MATRIX
    for i, role in enumerate(ROLES)
]


@pytest.mark.parametrize("method,url,body,role,expected", CASES)
def test_permission_matrix(cast, api, method, url, body, role, expected):
    ids = _setup(cast)
    client = api(None if role == "anonymous" else cast.user(role))
    response = getattr(client, method)(_fill(url, ids), _fill(body, ids), format="json")
    assert response.status_code == expected, response.content


def test_outsider_sees_no_projects_or_tasks(cast, api):
    TaskFactory(project=cast.project)
    assert api(cast.outsider).get("/api/v1/projects/").json()["count"] == 0
    assert api(cast.outsider).get("/api/v1/tasks/").json()["count"] == 0
    assert api(cast.viewer).get("/api/v1/tasks/").json()["count"] == 1
    assert api(cast.staff).get("/api/v1/tasks/").json()["count"] == 1


def test_denied_writes_change_nothing(cast, api):
    task = TaskFactory(project=cast.project, title="Original")
    api(cast.viewer).patch(f"/api/v1/tasks/{task.pk}/", {"title": "Hacked"}, format="json")
    api(cast.outsider).delete(f"/api/v1/tasks/{task.pk}/")
    api(cast.member).delete(f"/api/v1/projects/{cast.project.pk}/")
    task.refresh_from_db()
    assert task.title == "Original"
    assert Project.objects.filter(pk=cast.project.pk).exists()


def test_member_may_delete_own_task(cast, api):
    task = TaskFactory(project=cast.project, created_by=cast.member)
    assert api(cast.member).delete(f"/api/v1/tasks/{task.pk}/").status_code == 204
    assert not Task.objects.filter(pk=task.pk).exists()


def test_admin_cannot_manage_admins_but_owner_can(cast, api):
    newcomer = UserFactory(username="new-admin")
    body = {"user": newcomer.pk, "role": "admin"}
    assert api(cast.admin).post(f"/api/v1/projects/{cast.project.pk}/members/", body, format="json").status_code == 403
    assert api(cast.owner).post(f"/api/v1/projects/{cast.project.pk}/members/", body, format="json").status_code == 201


def test_owner_cannot_be_removed_or_granted(cast, api):
    url = f"/api/v1/projects/{cast.project.pk}/members/{cast.owner.pk}/"
    assert api(cast.owner).delete(url).status_code == 400
    newcomer = UserFactory(username="wannabe")
    r = api(cast.owner).post(
        f"/api/v1/projects/{cast.project.pk}/members/", {"user": newcomer.pk, "role": "owner"}, format="json"
    )
    assert r.status_code == 400 and "role" in api_errors(r)


def test_member_can_leave_project(cast, api):
    assert api(cast.viewer).delete(f"/api/v1/projects/{cast.project.pk}/members/{cast.viewer.pk}/").status_code == 204
    assert not Membership.objects.filter(project=cast.project, user=cast.viewer).exists()


def test_removing_a_member_unassigns_their_tasks(cast, api):
    task = TaskFactory(project=cast.project, assignee=cast.member)
    assert api(cast.owner).delete(f"/api/v1/projects/{cast.project.pk}/members/{cast.member.pk}/").status_code == 204
    task.refresh_from_db()
    assert task.assignee is None


def test_comment_of_other_project_is_404(cast, api):
    task = TaskFactory(project=cast.project)
    other = CommentFactory()
    r = api(cast.owner).get(f"/api/v1/tasks/{task.pk}/comments/{other.pk}/")
    assert r.status_code == 404
    assert Comment.objects.filter(pk=other.pk).exists()
