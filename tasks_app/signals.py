"""Domain events sent by tasks_app services *inside* their transaction.

Other apps (notifications, webhooks) connect receivers in their AppConfig.ready() and write their
side-effect rows in the same transaction, so an event and its effects commit or roll back together.

Keyword arguments (sender is always the model class):
- task_created:   task, actor
- task_updated:   task, actor, changes  ({field: [old, new]} with JSON-ready values)
- task_assigned:  task, actor, previous_assignee_id
- task_completed: task, actor
- task_deleted:   task (already deleted; pk kept in task_id), task_id, actor
- comment_created: comment, actor
- comment_updated: comment, actor, previous_body
- comment_deleted: comment (already deleted; pk kept), task, actor
- project_updated: project, actor, changes
- membership_changed: membership, actor, action ("added" | "updated" | "removed"), changes
- label_changed: label, actor, action ("created" | "updated" | "deleted"), changes
- task_labels_changed: task, actor, added (label ids), removed (label ids)
- relation_changed: relation, actor, action ("added" | "removed")
Every one of them has a row in the event log (tasks_app.models.Event) written just before it.
- recurring_instances_created: instances (a sequence of the created Tasks, each with .recurring_template and
  .project set; built when first read), project_ids (the set of their projects: a receiver with nothing to do
  for them returns without reading `instances`)
"""

from django.dispatch import Signal

task_created = Signal()
task_updated = Signal()
task_assigned = Signal()
task_completed = Signal()
task_deleted = Signal()
comment_created = Signal()
comment_updated = Signal()
comment_deleted = Signal()
project_updated = Signal()
membership_changed = Signal()
label_changed = Signal()
task_labels_changed = Signal()
relation_changed = Signal()

# Sent by the recurrence engine once per batch of instances it created (instances created in bulk do
# not send task_created): receivers handle the whole batch with a few queries, not a few per instance.
recurring_instances_created = Signal()


def json_value(value):
    """A `changes` value as JSON: datetimes as ISO 8601, model instances as their pk."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "pk"):
        return value.pk
    return value
