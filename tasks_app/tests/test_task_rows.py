"""The task list's fast rows are exactly what TaskOutputSerializer gives, field for field."""

from datetime import UTC, datetime, timedelta

from tasks_app.api.serializers import TaskOutputSerializer
from tasks_app.api.task_rows import task_rows, task_values
from tasks_app.models import Status, Task
from tasks_app.tests.factories import TaskFactory


def test_rows_equal_the_serializer_for_every_shape(cast, api):
    due = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)
    TaskFactory(project=cast.project, assignee=cast.member, due_at=due, status=Status.DONE,
                completed_at=due + timedelta(hours=1), description="ünïcode \"quoted\" <b>")
    TaskFactory(project=cast.project, assignee=None, created_by=None, priority=4)
    TaskFactory(project=cast.project, created_by=cast.admin, occurrence_at=due)
    qs = Task.objects.order_by("id")
    expected = [dict(TaskOutputSerializer(task).data) for task in qs]
    assert task_rows(task_values(qs)) == expected
    # And through the API, with the list's own filters and ordering.
    body = api(cast.owner).get("/api/v1/tasks/?ordering=priority").json()["results"]
    by_id = {row["id"]: row for row in expected}
    assert body == [by_id[row["id"]] for row in body] and len(body) == 3
