"""Admin for labels, relations and the event log writes through the services (events are recorded)."""

import pytest

from tasks_app.models import Event, Label, Task, TaskRelation
from tasks_app.services.labels import label_create
from tasks_app.services.tasks import task_create
from tasks_app.tests.factories import ProjectFactory


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.test", "pw-123456")


def test_label_admin_creates_and_refuses_a_clash(cast, client, root):
    client.force_login(root)
    r = client.post("/admin/tasks_app/label/add/", {"project": cast.project.pk, "name": "Bug", "color": "#ff0000"})
    assert r.status_code == 302
    assert Event.objects.filter(type="label.created", actor=root).count() == 1
    r = client.post("/admin/tasks_app/label/add/", {"project": cast.project.pk, "name": "bug", "color": "#ff0000"})
    assert r.status_code == 200 and Label.objects.count() == 1


def test_relation_admin_refuses_a_cycle_and_event_admin_is_read_only(cast, client, root):
    a = task_create(actor=cast.member, project=cast.project, title="a")
    b = task_create(actor=cast.member, project=cast.project, title="b")
    client.force_login(root)
    r = client.post("/admin/tasks_app/taskrelation/add/", {"source": a.pk, "type": "blocks", "target": b.pk})
    assert r.status_code == 302 and Event.objects.filter(type="relation.added").count() == 2
    r = client.post("/admin/tasks_app/taskrelation/add/", {"source": b.pk, "type": "blocks", "target": a.pk})
    assert r.status_code == 200 and TaskRelation.objects.count() == 1
    assert client.get("/admin/tasks_app/event/").status_code == 200
    assert client.get("/admin/tasks_app/event/add/").status_code == 403


class TestTaskParentAndLabelsInAdmin:
    """A task's parent and labels are edited in the admin through task_update, like the API's PATCH."""

    @staticmethod
    def _form(task, **changes):
        data = {
            "title": task.title,
            "description": task.description,
            "status": task.status,
            "priority": task.priority,
            "assignee": task.assignee_id or "",
            "due_at_0": "",
            "due_at_1": "",
            "parent": task.parent_id or "",
            "labels": list(task.labels.values_list("pk", flat=True)),
        }
        data.update(changes)
        return data

    def _post(self, client, task, **changes):
        return client.post(f"/admin/tasks_app/task/{task.pk}/change/", self._form(task, **changes))

    def test_sets_parent_and_labels_with_their_events(self, cast, client, root):
        parent = task_create(actor=cast.member, project=cast.project, title="parent")
        child = task_create(actor=cast.member, project=cast.project, title="child")
        bug = label_create(project=cast.project, actor=cast.member, name="bug")
        label_create(project=cast.project, actor=cast.member, name="ux")
        other = label_create(project=ProjectFactory(owner=cast.member), actor=cast.member, name="elsewhere")
        client.force_login(root)
        page = client.get(f"/admin/tasks_app/task/{child.pk}/change/").content.decode()
        assert page.count('name="labels"') == 2  # bug and ux
        assert "elsewhere" not in page  # only the task's project's labels are offered
        assert client.get("/admin/tasks_app/task/add/").status_code == 200

        r = self._post(client, child, parent=parent.pk, labels=[bug.pk])
        assert r.status_code == 302, r.content.decode()[:3000]
        child.refresh_from_db()
        assert child.parent_id == parent.pk and list(child.labels.values_list("pk", flat=True)) == [bug.pk]
        assert child.version == 2  # one write, like one PATCH
        updated = Event.objects.get(type="task.updated", task_id=child.pk)
        assert updated.actor == root and updated.data["changes"]["parent"] == [None, parent.pk]
        assert Event.objects.filter(type="subtask.added", task_id=parent.pk, actor=root).count() == 1
        assert Event.objects.filter(type="label.added", task_id=child.pk, actor=root).count() == 1

        # A label of another project is not a choice; nothing changes.
        r = self._post(client, child, labels=[other.pk])
        assert r.status_code == 200 and "labels" in r.context["adminform"].form.errors
        assert list(child.labels.values_list("pk", flat=True)) == [bug.pk]

        # Unsetting the parent and the labels goes the same way.
        r = self._post(client, child, parent="", labels=[])
        assert r.status_code == 302
        child.refresh_from_db()
        assert child.parent_id is None and not child.labels.exists()
        assert Event.objects.filter(type="subtask.removed", task_id=parent.pk).count() == 1
        assert Event.objects.filter(type="label.removed", task_id=child.pk).count() == 1

    def test_refuses_a_cross_project_parent_and_a_cycle_as_form_errors(self, cast, client, root):
        a = task_create(actor=cast.member, project=cast.project, title="a")
        b = task_create(actor=cast.member, project=cast.project, title="b", parent=a)
        c = task_create(actor=cast.member, project=cast.project, title="c", parent=b)
        elsewhere = task_create(actor=cast.owner, project=ProjectFactory(owner=cast.owner), title="elsewhere")
        events = Event.objects.count()
        client.force_login(root)

        r = self._post(client, a, parent=elsewhere.pk)
        assert r.status_code == 200
        assert r.context["adminform"].form.errors["parent"] == ["Not a task of this project."]
        r = self._post(client, a, parent=c.pk)  # a → b → c → a
        assert r.status_code == 200
        assert r.context["adminform"].form.errors["parent"] == ["Would create a cycle."]
        r = self._post(client, a, parent=a.pk)
        assert r.context["adminform"].form.errors["parent"] == ["Would create a cycle."]
        a.refresh_from_db()
        assert a.parent_id is None and a.version == 1 and Event.objects.count() == events

    def test_refuses_the_depth_limit_and_done_with_open_subtasks(self, cast, client, root):
        chain = [task_create(actor=cast.member, project=cast.project, title="0")]
        for i in range(1, 5):  # five levels: the limit
            chain.append(task_create(actor=cast.member, project=cast.project, title=str(i), parent=chain[-1]))
        loose = task_create(actor=cast.member, project=cast.project, title="loose")
        client.force_login(root)
        r = self._post(client, loose, parent=chain[-1].pk)
        assert r.status_code == 200 and "parent" in r.context["adminform"].form.errors
        r = self._post(client, chain[0], status="done")
        assert r.status_code == 200 and "status" in r.context["adminform"].form.errors
        assert Task.objects.get(pk=chain[0].pk).status == "todo"

    def test_add_page_takes_a_parent_of_the_chosen_project_only(self, cast, client, root):
        parent = task_create(actor=cast.member, project=cast.project, title="parent")
        elsewhere = ProjectFactory(owner=cast.owner)
        client.force_login(root)
        data = {"title": "new", "description": "", "status": "todo", "priority": 2, "assignee": ""}
        data.update({"due_at_0": "", "due_at_1": "", "parent": parent.pk})
        r = client.post("/admin/tasks_app/task/add/", {**data, "project": elsewhere.pk})
        assert r.status_code == 200 and "parent" in r.context["adminform"].form.errors
        r = client.post("/admin/tasks_app/task/add/", {**data, "project": cast.project.pk})
        assert r.status_code == 302
        child = Task.objects.get(title="new")
        assert child.parent_id == parent.pk
        assert Event.objects.filter(type="subtask.added", task_id=parent.pk, actor=root).count() == 1
