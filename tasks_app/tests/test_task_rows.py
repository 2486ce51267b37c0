"""The task list's fast rows are exactly what TaskOutputSerializer gives, field for field."""

from datetime import UTC, datetime, timedelta

from tasks_app.api.serializers import TaskOutputSerializer
from tasks_app.api.task_rows import task_rows, task_values
from tasks_app.models import Label, Status, Task, TaskLabel, TaskRelation
from tasks_app.selectors import with_task_counts
from tasks_app.tests.factories import CommentFactory, TaskFactory


def test_rows_equal_the_serializer_for_every_shape(cast, api):
    due = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)
    TaskFactory(
        project=cast.project,
        assignee=cast.member,
        due_at=due,
        status=Status.DONE,
        completed_at=due + timedelta(hours=1),
        description='ünïcode "quoted" <b>',
    )
    TaskFactory(project=cast.project, assignee=None, created_by=None, priority=4)
    third = TaskFactory(project=cast.project, created_by=cast.admin, occurrence_at=due)
    parent = Task.objects.order_by("id").first()
    child = TaskFactory(project=cast.project, parent=parent, position="i")
    TaskRelation.objects.create(source=third, target=child, type="blocks")
    CommentFactory(task=child, author=cast.member)
    bug, ui = (
        Label.objects.create(project=cast.project, name="bug"),
        Label.objects.create(project=cast.project, name="UI"),
    )
    TaskLabel.objects.create(task=child, label=ui)
    TaskLabel.objects.create(task=child, label=bug)
    qs = with_task_counts(Task.objects.order_by("id"))
    expected = [dict(TaskOutputSerializer(task).data) for task in qs]
    assert expected[0]["subtask_count"] == 1 and expected[-1]["is_blocked"] is True
    assert {label["name"] for label in expected[-1]["labels"]} == {"UI", "bug"}
    assert task_rows(task_values(qs)) == expected
    # And through the API, with the list's own filters and ordering.
    body = api(cast.owner).get("/api/v1/tasks/?ordering=priority").json()["results"]
    by_id = {row["id"]: row for row in expected}
    assert body == [by_id[row["id"]] for row in body] and len(body) == 4
