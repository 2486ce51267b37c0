import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from tasks_app.models import Membership, Role, Status, Task
from tasks_app.tests.factories import ProjectFactory, TaskFactory, UserFactory

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.ANALYTICS_EXPORT_TMP_DIR = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    return tmp_path


class Crafted:
    """The dataset whose metrics are computed by hand in test_metrics.py (times relative to NOW)."""


@pytest.fixture
def crafted(db):
    c = Crafted()
    c.owner = UserFactory(username="c-owner")
    c.alice = UserFactory(username="alice")
    c.bob = UserFactory(username="bob")
    c.project = ProjectFactory(owner=c.owner, name="Crafted")
    c.other = ProjectFactory(owner=c.owner, name="Other")
    for user in (c.alice, c.bob):
        Membership.objects.create(project=c.project, user=user, role=Role.MEMBER)
    Membership.objects.create(project=c.other, user=c.alice, role=Role.MEMBER)

    def task(title, status, created, *, cycle=None, assignee=None, due=None, project=None):
        return TaskFactory(
            project=project or c.project,
            title=title,
            status=status,
            assignee=assignee,
            created_at=created,
            completed_at=created + cycle if cycle is not None else None,
            due_at=due,
        )

    task("t1", Status.DONE, NOW - 3 * D, cycle=1 * H, assignee=c.alice)  # done 03-12
    task("t2", Status.DONE, NOW - 3 * D, cycle=2 * H, assignee=c.alice)  # done 03-12
    task("t3", Status.DONE, NOW - 1 * D, cycle=3 * H, assignee=c.bob)  # done 03-14
    task("t4", Status.DONE, NOW - 40 * D, cycle=4 * H, assignee=c.bob)  # done 02-03, outside 30 days
    task("t5", Status.DONE, NOW - 10 * H, cycle=10 * H, assignee=c.alice)  # done 03-15 (today)
    task("t6", Status.TODO, NOW - 5 * D, assignee=c.alice, due=NOW - H)  # overdue
    task("t7", Status.IN_PROGRESS, NOW - 5 * D, assignee=c.bob, due=NOW + D)  # open, not overdue
    task("t8", Status.TODO, NOW - 5 * D)  # open, no due date
    task("t9", Status.IN_PROGRESS, NOW - 5 * D, due=NOW - 2 * D)  # overdue, unassigned
    task("t10", Status.CANCELLED, NOW - 6 * D, assignee=c.alice, due=NOW - 5 * D)  # cancelled, not overdue
    task("t11", Status.DONE, NOW - 6 * D)  # done without completed_at
    task("o1", Status.DONE, NOW - 2 * D, cycle=timedelta(minutes=30), assignee=c.alice, project=c.other)  # 03-13
    return c


def bulk_tasks(project, n, **fields):
    Task.objects.bulk_create(
        [Task(project=project, title=f"bulk {i}", created_by=project.owner, **fields) for i in range(n)]
    )


def read_csv(data: bytes):
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def read_xlsx(data: bytes):
    sheet = load_workbook(io.BytesIO(data), read_only=True)["tasks"]
    rows = [
        ["" if v is None else v if isinstance(v, str) else str(v) for v in row]
        for row in sheet.iter_rows(values_only=True)
    ]
    width = len(rows[0]) if rows else 0
    return [row + [""] * (width - len(row)) for row in rows]  # trailing empty cells are not stored
