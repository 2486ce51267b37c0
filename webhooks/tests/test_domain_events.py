"""Webhook events for labels, relations, subtasks, comment edits/deletes, membership and project changes."""

import json

from tasks_app.models import Membership, Role
from tasks_app.services.comments import comment_create, comment_delete, comment_update
from tasks_app.services.labels import label_create, label_delete, label_update
from tasks_app.services.projects import membership_add, membership_remove, membership_update, project_update
from tasks_app.services.relations import relation_add, relation_remove
from tasks_app.services.tasks import task_create, task_update
from tasks_app.tests.factories import UserFactory
from webhooks.models import WebhookDelivery
from webhooks.tests.factories import SubscriptionFactory


def _sent():
    return [(d.event_type, json.loads(d.body)["data"]) for d in WebhookDelivery.objects.order_by("id")]


def test_each_domain_change_has_its_event_with_a_payload(cast):
    SubscriptionFactory(project=cast.project)  # subscribed to every event type
    parent = task_create(actor=cast.member, project=cast.project, title="parent")
    other = task_create(actor=cast.member, project=cast.project, title="other")
    WebhookDelivery.objects.all().delete()

    label = label_create(project=cast.project, actor=cast.member, name="bug", color="#ff0000")
    label_update(label=label, actor=cast.admin, data={"name": "Bug"})
    task_update(task=other, actor=cast.member, data={"labels": [label.pk], "parent": parent})
    relation = relation_add(task=parent, actor=cast.member, other=other, type="blocks")
    relation_remove(relation=relation, actor=cast.member, task=parent)
    comment = comment_create(task=other, actor=cast.member, body="one")
    comment_update(comment=comment, actor=cast.member, body="two")
    comment_delete(comment=comment, actor=cast.member)
    label_delete(label=label, actor=cast.admin)
    newcomer = UserFactory(username="newcomer")
    membership = membership_add(project=cast.project, actor=cast.owner, user=newcomer, role=Role.MEMBER)
    membership_update(membership=membership, actor=cast.owner, role=Role.VIEWER)
    membership_remove(membership=Membership.objects.get(pk=membership.pk), actor=cast.owner)
    project_update(project=cast.project, actor=cast.owner, data={"name": "Gemini"})

    sent = _sent()
    types = [t for t, _ in sent]
    for expected in [
        "label.created",
        "label.updated",
        "task.labels_changed",
        "subtask.added",
        "relation.added",
        "relation.removed",
        "comment.updated",
        "comment.deleted",
        "label.deleted",
        "member.added",
        "member.updated",
        "member.removed",
        "project.updated",
    ]:
        assert expected in types, expected
    data = dict(sent)
    assert data["label.updated"]["changes"] == {"name": ["bug", "Bug"]}
    assert data["task.labels_changed"] == {
        "task": other.pk,
        "added": [label.pk],
        "removed": [],
        "actor": cast.member.pk,
    }
    assert data["subtask.added"]["parent"] == parent.pk and data["subtask.added"]["subtask"] == other.pk
    assert data["relation.added"]["relation"]["type"] == "blocks"
    assert data["comment.updated"]["changes"] == {"body": ["one", "two"]}
    assert data["member.updated"]["changes"] == {"role": ["member", "viewer"]}
    assert data["project.updated"]["changes"] == {"name": ["Apollo", "Gemini"]}
