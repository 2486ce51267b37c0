"""A populated world for the security suite: one owner's project with every kind of object, and an outsider's twin."""

import dataclasses
import datetime as dt

import pytest
from django.utils import timezone

from tasks_app.models import Role


@dataclasses.dataclass
class World:
    user: object
    token: str
    project: object
    task: object
    comment: object
    subscription: object
    delivery: object
    notification: object
    export: object
    template: object
    reminder: object
    member: object
    label: object = None
    relation: object = None
    api_token: object = None

    def path_ids(self):
        """Real ids for every path parameter name the schema uses."""
        return {
            "id": None,  # depends on the operation; see ids_for()
            "project_id": self.project.pk,
            "project_pk": self.project.pk,
            "task_pk": self.task.pk,
            "webhook_pk": self.subscription.pk,
            "user_id": self.member.pk,
        }

    def ids_for(self, path):
        """Path parameters naming this world's own objects for an operation path."""
        ids = {k: v for k, v in self.path_ids().items() if "{" + k + "}" in path}
        if "{id}" in path:
            ids["id"] = self._id_for(path)
        if "{token}" in path:
            from notifications.services import unsubscribe_token

            ids["token"] = unsubscribe_token(user_id=self.user.pk, kind="assigned")
        return ids

    def _id_for(self, path):
        for prefix, obj in [
            ("/api/v1/tasks/{task_pk}/comments/", self.comment),
            ("/api/v1/tasks/{task_pk}/reminders/", self.reminder),
            ("/api/v1/tasks/{task_pk}/relations/", self.relation),
            ("/api/v1/projects/{project_pk}/labels/", self.label),
            ("/api/v1/webhooks/{webhook_pk}/deliveries/", self.delivery),
            ("/api/v1/projects/", self.project),
            ("/api/v1/tasks/", self.task),
            ("/api/v1/webhooks/", self.subscription),
            ("/api/v1/notifications/", self.notification),
            ("/api/v1/exports/", self.export),
            ("/api/v1/recurring-tasks/", self.template),
            ("/api/v1/auth/tokens/", self.api_token),
        ]:
            if path.startswith(prefix):
                return obj.pk
        raise AssertionError(f"no object for {path}")


def build_world(name):
    """A user owning a project with members, tasks, comments, a webhook, notifications, an export and a template.

    Built through the apps' services (the same code the API runs), so signals write notifications and deliveries.
    """
    from accounts.services import api_token_create
    from analytics.services import export_create
    from notifications.models import Notification
    from reminders.services import reminder_create
    from tasks_app.recurring.templates import recurring_template_create
    from tasks_app.services.comments import comment_create
    from tasks_app.services.labels import label_create
    from tasks_app.services.projects import membership_add, project_create
    from tasks_app.services.relations import relation_add
    from tasks_app.services.tasks import task_create, task_update
    from tasks_app.tests.factories import UserFactory
    from webhooks.models import WebhookDelivery
    from webhooks.services import subscription_create

    owner = UserFactory(username=f"{name}-owner")
    member = UserFactory(username=f"{name}-member")
    viewer = UserFactory(username=f"{name}-viewer")
    project = project_create(actor=owner, name=f"{name} project")
    membership_add(project=project, actor=owner, user=member, role=Role.MEMBER)
    membership_add(project=project, actor=owner, user=viewer, role=Role.VIEWER)
    subscription, _ = subscription_create(
        actor=owner,
        project=project,
        url="http://127.0.0.1:9/hook",
        events=["task.created", "task.updated", "comment.created"],
    )
    task = task_create(
        actor=owner,
        project=project,
        title=f"{name} task",
        assignee=member,
        due_at=timezone.now() + dt.timedelta(days=3),
    )
    mine = task_create(actor=member, project=project, title=f"{name} task for the owner", assignee=owner)
    comment = comment_create(task=task, actor=member, body=f"@{owner.username} please look")
    reminder = reminder_create(task=task, actor=owner, offset=dt.timedelta(hours=1))
    template = recurring_template_create(
        actor=owner,
        project=project,
        title=f"{name} weekly",
        rrule="FREQ=WEEKLY",
        dtstart=timezone.now() + dt.timedelta(days=1),
    )
    export = export_create(requester=owner, format="csv", project_id=project.pk)
    label = label_create(project=project, actor=owner, name=f"{name} label")
    task_update(task=mine, actor=owner, data={"labels": [label.pk], "parent": task})
    relation = relation_add(task=mine, actor=owner, other=task, type="blocks")
    assert mine.pk
    api_token, key = api_token_create(user=owner, name="security")
    return World(
        user=owner,
        token=key,
        project=project,
        task=task,
        comment=comment,
        subscription=subscription,
        delivery=WebhookDelivery.objects.filter(subscription=subscription).first(),
        notification=Notification.objects.filter(recipient=owner).first(),
        export=export,
        template=template,
        reminder=reminder,
        member=member,
        label=label,
        relation=relation,
        api_token=api_token,
    )


@pytest.fixture
def world(db):
    w = build_world("alice")
    assert w.delivery is not None and w.notification is not None
    return w


@pytest.fixture
def other_world(db):
    """The same shape of data owned by someone else."""
    return build_world("bob")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/security/" in str(item.path):
            item.add_marker(pytest.mark.security)
