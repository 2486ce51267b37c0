"""Subtask rules: a parent in the same project, at most MAX_SUBTASK_DEPTH levels, no cycles.

Chosen behaviours (documented in docs/task-domain.md):
- Completing (status `done`) a task with open subtasks is refused with a 409 naming them;
  cancelling it is allowed.
- Deleting a task deletes its whole subtree (like Jira, Asana and Todoist), each subtask through
  task_delete's own path so every deletion has its event and webhook.
"""

from core.exceptions import ApplicationError, Conflict
from tasks_app.models import CLOSED_STATUSES, MAX_SUBTASK_DEPTH, Status, Task


def ancestor_ids(task_id):
    """Ids from the task's parent up to its root (at most MAX_SUBTASK_DEPTH queries)."""
    ids, current = [], task_id
    for _ in range(MAX_SUBTASK_DEPTH + 1):
        parent_id = Task.objects.filter(pk=current).values_list("parent_id", flat=True).first()
        if parent_id is None:
            return ids
        ids.append(parent_id)
        current = parent_id
    return ids


def descendant_levels(task_id):
    """The subtree below a task, as lists of ids per level (one query per level)."""
    levels, frontier = [], [task_id]
    while frontier:
        frontier = list(Task.objects.filter(parent_id__in=frontier).values_list("id", flat=True))
        if frontier:
            levels.append(frontier)
    return levels


def validate_parent(*, task, parent):
    """Raise unless `parent` (a Task or None) may become `task`'s parent. `task` is None on create."""
    if parent is None:
        return
    project_id = task.project_id if task is not None else None
    if project_id is not None and parent.project_id != project_id:
        raise ApplicationError(
            "A subtask must be in its parent's project.", fields={"parent": "Not a task of this project."}
        )
    above = ancestor_ids(parent.pk)
    if task is not None and (parent.pk == task.pk or task.pk in above):
        raise ApplicationError(
            "A task cannot be nested under itself or one of its own subtasks.",
            fields={"parent": "Would create a cycle."},
            code="subtask_cycle",
        )
    height = 1 + (len(descendant_levels(task.pk)) if task is not None else 0)
    depth_of_parent = len(above) + 1
    if depth_of_parent + height > MAX_SUBTASK_DEPTH:
        raise ApplicationError(
            f"Subtasks nest at most {MAX_SUBTASK_DEPTH} levels deep.",
            fields={"parent": f"Would make the tree deeper than {MAX_SUBTASK_DEPTH} levels."},
            code="subtask_depth",
        )


def validate_parent_for_create(*, project, parent):
    if parent is not None and parent.project_id != project.pk:
        raise ApplicationError(
            "A subtask must be in its parent's project.", fields={"parent": "Not a task of this project."}
        )
    validate_parent(task=None, parent=parent)


def refuse_done_with_open_subtasks(*, task):
    open_ids = list(
        Task.objects.filter(parent_id=task.pk).exclude(status__in=CLOSED_STATUSES).values_list("id", flat=True)[:20]
    )
    if open_ids:
        raise Conflict(
            "Close this task's subtasks first.",
            fields={"status": f"Open subtasks: {open_ids}."},
            code="open_subtasks",
        )


__all__ = ["Status", "ancestor_ids", "descendant_levels", "validate_parent", "refuse_done_with_open_subtasks"]
