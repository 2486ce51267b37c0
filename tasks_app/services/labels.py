"""Project labels: members create and attach them; admins rename, recolour and delete them."""

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from core.exceptions import ApplicationError, Conflict
from tasks_app import signals
from tasks_app.models import Label, Role, TaskLabel
from tasks_app.permissions import require_role, require_writable
from tasks_app.services.events import event_build, event_record, event_record_many


def _name_clash(*, project, name, exclude_id=None):
    qs = Label.objects.annotate(lname=Lower("name")).filter(project=project, lname=name.lower())
    if exclude_id:
        qs = qs.exclude(pk=exclude_id)
    if qs.exists():
        raise Conflict(
            "A label with this name already exists in the project.",
            fields={"name": "Already used in this project (names ignore case)."},
            code="label_name_taken",
        )


def _save(label):
    try:
        with transaction.atomic():
            label.save()
    except IntegrityError:  # a concurrent create with the same name won the race
        raise Conflict(
            "A label with this name already exists in the project.",
            fields={"name": "Already used in this project (names ignore case)."},
            code="label_name_taken",
        )


@transaction.atomic
def label_create(*, project, actor, name, color="#808080"):
    require_role(user=actor, project=project, minimum=Role.MEMBER, action="create labels")
    require_writable(project)
    name = name.strip()
    if not name:
        raise ApplicationError("A label needs a name.", fields={"name": "May not be blank."})
    _name_clash(project=project, name=name)
    label = Label(project=project, name=name, color=color.lower())
    _save(label)
    event_record(
        type="label.created", project_id=project.pk, actor=actor, data={"label": label.pk, "name": name, "color": color}
    )
    signals.label_changed.send(sender=Label, label=label, actor=actor, action="created", changes={})
    return label


@transaction.atomic
def label_update(*, label, actor, data):
    require_role(user=actor, project=label.project, minimum=Role.ADMIN, action="rename or recolour labels")
    require_writable(label.project)
    changes = {}
    if "name" in data:
        name = data["name"].strip()
        if not name:
            raise ApplicationError("A label needs a name.", fields={"name": "May not be blank."})
        if name != label.name:
            _name_clash(project=label.project, name=name, exclude_id=label.pk)
            changes["name"] = [label.name, name]
            label.name = name
    if "color" in data and data["color"].lower() != label.color:
        changes["color"] = [label.color, data["color"].lower()]
        label.color = data["color"].lower()
    if changes:
        _save(label)
        event_record(
            type="label.updated",
            project_id=label.project_id,
            actor=actor,
            data={"label": label.pk, "changes": changes},
        )
        signals.label_changed.send(sender=Label, label=label, actor=actor, action="updated", changes=changes)
    return label


@transaction.atomic
def label_delete(*, label, actor):
    """Admins only. The label leaves every task it was on (one label.removed event per task)."""
    require_role(user=actor, project=label.project, minimum=Role.ADMIN, action="delete labels")
    require_writable(label.project)
    task_ids = list(TaskLabel.objects.filter(label=label).values_list("task_id", flat=True))
    label_id = label.pk
    event_record_many(
        [
            event_build(
                type="label.removed",
                project_id=label.project_id,
                task_id=task_id,
                actor=actor,
                data={"label": label_id, "name": label.name},
            )
            for task_id in task_ids
        ]
    )
    label.delete()
    label.pk = label_id
    event_record(
        type="label.deleted", project_id=label.project_id, actor=actor, data={"label": label_id, "name": label.name}
    )
    signals.label_changed.send(sender=Label, label=label, actor=actor, action="deleted", changes={})


def _project_labels(*, task, label_ids):
    labels = {label.pk: label for label in Label.objects.filter(project_id=task.project_id, pk__in=label_ids)}
    missing = sorted(set(label_ids) - set(labels))
    if missing:
        raise ApplicationError(
            "Labels must belong to the task's project.",
            fields={"labels": f"Unknown labels in this project: {missing}."},
            code="does_not_exist",
        )
    return labels


def task_labels_change(*, task, actor, add=(), remove=()):
    """Attach `add` and detach `remove` (label ids). Caller holds the task's lock and checked permission.

    Returns (added ids, removed ids); writes one label.added / label.removed event per label.
    """
    add, remove = set(add) - set(remove), set(remove)
    labels = _project_labels(task=task, label_ids=add | remove)
    current = set(TaskLabel.objects.filter(task=task).values_list("label_id", flat=True))
    added, removed = sorted(add - current), sorted(remove & current)
    if added:
        TaskLabel.objects.bulk_create([TaskLabel(task=task, label_id=i) for i in added])
    if removed:
        TaskLabel.objects.filter(task=task, label_id__in=removed).delete()
    events = [
        event_build(
            type=kind,
            project_id=task.project_id,
            task_id=task.pk,
            actor=actor,
            data={"label": i, "name": labels[i].name},
        )
        for kind, ids in (("label.added", added), ("label.removed", removed))
        for i in ids
    ]
    event_record_many(events)
    if added or removed:
        signals.task_labels_changed.send(sender=TaskLabel, task=task, actor=actor, added=added, removed=removed)
    return added, removed


def task_labels_set(*, task, actor, label_ids):
    current = set(TaskLabel.objects.filter(task=task).values_list("label_id", flat=True))
    wanted = set(label_ids)
    return task_labels_change(task=task, actor=actor, add=wanted - current, remove=current - wanted)


@transaction.atomic
def task_labels_add_remove(*, task, actor, add=(), remove=()):
    """Attach/detach labels with a task edit's permission check and lock (bulk add_labels/remove_labels)."""
    from tasks_app.models import Task

    task = Task.objects.select_for_update().select_related("project").get(pk=task.pk)
    require_role(user=actor, project=task.project, minimum=Role.MEMBER, action="edit tasks")
    require_writable(task.project)
    added, removed = task_labels_change(task=task, actor=actor, add=add, remove=remove)
    if added or removed:
        task.version += 1
        task.save(update_fields=["version", "updated_at"])
    return added, removed
