"""Task relations: blocks (read as blocked_by from the target), duplicates, relates_to.

One row per relation. `blocked_by` is written as `blocks` with the ends swapped; `relates_to` is
symmetric and stored once (lower id first). A `blocks` that would close a cycle is refused with a
400 naming the whole cycle. Either end may be in another project as long as the actor can see it;
adding or removing needs member rights in the source task's project.
"""

from django.db import transaction

from core.exceptions import ApplicationError, Conflict
from tasks_app import signals
from tasks_app.models import Role, Task, TaskRelation
from tasks_app.permissions import require_role, require_writable
from tasks_app.services.events import event_build, event_record_many

INPUT_TYPES = ("blocks", "blocked_by", "duplicates", "relates_to")
MAX_CHAIN_SEARCH = 10000  # tasks visited at most while looking for a cycle


def _blocks_path(start_id, goal_id):
    """A path of task ids start → … → goal following `blocks` edges, or None (one query per level)."""
    came_from = {start_id: None}
    frontier = [start_id]
    while frontier and len(came_from) < MAX_CHAIN_SEARCH:
        edges = TaskRelation.objects.filter(type="blocks", source_id__in=frontier).values_list("source_id", "target_id")
        nxt = []
        for source, target in edges:
            if target in came_from:
                continue
            came_from[target] = source
            if target == goal_id:
                path = [target]
                while came_from[path[-1]] is not None:
                    path.append(came_from[path[-1]])
                return list(reversed(path))
            nxt.append(target)
        frontier = nxt
    return None


def _normalise(task, other, type):
    if type == "blocked_by":
        return other, task, "blocks"
    if type == "relates_to" and other.pk < task.pk:
        return other, task, "relates_to"
    return task, other, type


def _events(relation, actor, kind):
    data = {"relation": relation.pk, "type": relation.type, "source": relation.source_id, "target": relation.target_id}
    ends = [relation.source, relation.target]
    return [
        event_build(type=kind, project_id=t.project_id, task_id=t.pk, actor=actor, data=data)
        for t in ends
        if t is not None
    ]


def relation_check(*, task, other, type):
    """Raise unless the relation may be added; returns (source, target, stored type)."""
    if type not in INPUT_TYPES:
        raise ApplicationError("Unknown relation type.", fields={"type": f"One of {', '.join(INPUT_TYPES)}."})
    if other.pk == task.pk:
        raise ApplicationError("A task cannot relate to itself.", fields={"task": "Cannot be the same task."})
    source, target, stored = _normalise(task, other, type)
    if TaskRelation.objects.filter(source=source, target=target, type=stored).exists():
        raise Conflict("These tasks are already related this way.", fields={"task": "Relation exists."})
    if stored == "blocks":
        if transaction.get_connection().in_atomic_block:
            # Lock the rows so two concurrent inserts cannot close a cycle between them.
            list(Task.objects.select_for_update().filter(pk__in=[source.pk, target.pk]).values_list("id"))
        path = _blocks_path(target.pk, source.pk)
        if path:
            cycle = [source.pk, *path]
            named = "This would make a blocking cycle: " + " → ".join(f"#{i}" for i in cycle) + "."
            raise ApplicationError(
                named,
                fields={"task": named},
                code="blocking_cycle",
            )
    return source, target, stored


@transaction.atomic
def relation_add(*, task, actor, other, type):
    """Relate `task` to `other` (`type` from the task's side). Returns the stored TaskRelation."""
    require_role(user=actor, project=task.project, minimum=Role.MEMBER, action="relate tasks")
    require_writable(task.project)
    source, target, stored = relation_check(task=task, other=other, type=type)
    relation = TaskRelation.objects.create(source=source, target=target, type=stored, created_by=actor)
    event_record_many(_events(relation, actor, "relation.added"))
    signals.relation_changed.send(sender=TaskRelation, relation=relation, actor=actor, action="added")
    return relation


@transaction.atomic
def relation_remove(*, relation, actor, task):
    """Remove a relation seen from `task` (one of its ends)."""
    require_role(user=actor, project=task.project, minimum=Role.MEMBER, action="relate tasks")
    require_writable(task.project)
    relation_id = relation.pk
    events = _events(relation, actor, "relation.removed")
    relation.delete()
    relation.pk = relation_id
    event_record_many(events)
    signals.relation_changed.send(sender=TaskRelation, relation=relation, actor=actor, action="removed")
