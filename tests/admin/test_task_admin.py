"""Django admin writes tasks through tasks_app.services, like the API (staff need not be members). It lives
here, not in tasks_app/tests, because it checks what the feature apps (webhooks, notifications) receive."""

from datetime import UTC, datetime, timedelta

import pytest

from notifications.models import Notification
from tasks_app.models import Task
from tasks_app.tests.factories import TaskFactory
from webhooks.models import WebhookDelivery
from webhooks.tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

DUE = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def admin_client(client, django_user_model):
    """A superuser who is not a member of any project (the cast already has a user named "admin")."""
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.test", "pw"))
    return client


def _form(task, **changes):
    data = {
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "priority": task.priority,
        "assignee": task.assignee_id or "",
        "due_at_0": task.due_at.strftime("%Y-%m-%d") if task.due_at else "",
        "due_at_1": task.due_at.strftime("%H:%M:%S") if task.due_at else "",
    }
    data.update(changes)
    return data


def test_saving_a_task_in_admin_goes_through_the_service(cast, api, admin_client):
    task = TaskFactory(project=cast.project, title="Before", due_at=DUE)
    SubscriptionFactory(project=cast.project, events=["task.updated", "task.assigned"])
    r = api(cast.owner).post(f"/api/v1/tasks/{task.pk}/reminders/", {"offset_minutes": -60}, format="json")
    assert r.status_code == 201, r.content
    fire_before = r.json()["fire_at"]

    new_due = DUE + timedelta(days=1)
    r = admin_client.post(
        f"/admin/tasks_app/task/{task.pk}/change/",
        _form(
            task,
            title="After",
            assignee=cast.member.pk,
            due_at_0=new_due.strftime("%Y-%m-%d"),
            due_at_1=new_due.strftime("%H:%M:%S"),
        ),
    )
    assert r.status_code == 302, r.content.decode()[:3000]
    task.refresh_from_db()
    assert (task.title, task.assignee_id, task.due_at, task.version) == ("After", cast.member.pk, new_due, 2)
    events = set(
        WebhookDelivery.objects.filter(subscription__project=cast.project).values_list("event_type", flat=True)
    )
    assert {"task.updated", "task.assigned"} <= events
    assert Notification.objects.filter(recipient=cast.member, kind="assigned", task=task).exists()
    reminders = api(cast.owner).get(f"/api/v1/tasks/{task.pk}/reminders/").json()["results"]
    assert reminders[0]["fire_at"] != fire_before  # the offset reminder moved with due_at
    assert reminders[0]["fire_at"].startswith("2030-05-02T08:00:00")


def test_admin_refuses_an_assignee_who_is_not_a_member(cast, admin_client):
    task = TaskFactory(project=cast.project, title="Same")
    r = admin_client.post(f"/admin/tasks_app/task/{task.pk}/change/", _form(task, assignee=cast.outsider.pk))
    assert r.status_code == 200 and "not a member" in r.content.decode()
    task.refresh_from_db()
    assert task.assignee_id is None and task.version == 1


def test_adding_a_task_in_admin_sends_its_events(cast, admin_client):
    SubscriptionFactory(project=cast.project, events=["task.created"])
    data = {"project": cast.project.pk, "title": "From admin", "description": "", "status": "todo", "priority": 2}
    data.update({"assignee": "", "due_at_0": "", "due_at_1": ""})
    r = admin_client.post("/admin/tasks_app/task/add/", data)
    assert r.status_code == 302, r.content.decode()[:3000]
    task = Task.objects.get(title="From admin")
    assert task.version == 1 and task.created_by.username == "root"
    assert WebhookDelivery.objects.filter(event_type="task.created").count() == 1


def test_deleting_a_task_in_admin_sends_task_deleted(cast, admin_client):
    task = TaskFactory(project=cast.project)
    SubscriptionFactory(project=cast.project, events=["task.deleted"])
    r = admin_client.post(f"/admin/tasks_app/task/{task.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not Task.objects.filter(pk=task.pk).exists()
    assert WebhookDelivery.objects.filter(event_type="task.deleted").count() == 1
