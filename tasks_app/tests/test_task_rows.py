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


def test_the_list_base_built_once_per_process_gives_each_user_only_their_tasks(cast):
    """task_list() chains on one annotated queryset kept for the process (selectors._annotated_tasks): the same SQL
    as annotating afresh, and nothing of one caller's filter stays on it for the next."""
    from tasks_app.selectors import _annotated_tasks, task_list, visible_tasks
    from tasks_app.tests.factories import ProjectFactory

    mine = TaskFactory(project=cast.project)
    other_project = ProjectFactory(owner=cast.outsider, name="Gemini")
    theirs = TaskFactory(project=other_project)
    for user, expected in ((cast.member, [mine.pk]), (cast.outsider, [theirs.pk]), (cast.member, [mine.pk])):
        assert list(task_list(user=user).values_list("pk", flat=True)) == expected
    assert sorted(task_list(user=cast.staff).values_list("pk", flat=True)) == sorted([mine.pk, theirs.pk])
    fresh = with_task_counts(visible_tasks(user=cast.member).select_related("project", "assignee", "created_by"))
    assert str(task_list(user=cast.member).query) == str(fresh.query)
    assert _annotated_tasks()._result_cache is None and not _annotated_tasks().query.where
