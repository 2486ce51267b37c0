"""Queue `recurring`: thin tasks that load by id and call the services. All idempotent."""

from datetime import datetime

from celery import shared_task

from core.exceptions import ApplicationError
from tasks_app.recurring.engine import recurring_cleanup_completed, recurring_instance_create, recurring_process_due
from tasks_app.recurring.templates import recurring_template_apply


@shared_task(name="recurring.process_recurring_tasks")
def process_recurring_tasks():
    """Periodic: create the instances of every due template, in batches."""
    return recurring_process_due()


@shared_task(name="recurring.create_recurring_task_instance")
def create_recurring_task_instance(template_id, occurrence_at):
    """Create one template's instance for one occurrence (ISO 8601 with offset)."""
    try:
        task, created = recurring_instance_create(
            template_id=template_id, occurrence_at=datetime.fromisoformat(occurrence_at)
        )
    except ApplicationError as exc:  # gone or not an occurrence: retrying cannot help
        return {"template": template_id, "error": exc.code}
    return {"template": template_id, "task": task.pk, "created": created}


@shared_task(name="recurring.update_recurring_task_template")
def update_recurring_task_template(template_id):
    """Apply a template's pending changes to its future, not-started instances."""
    return recurring_template_apply(template_id=template_id)


@shared_task(name="recurring.cleanup_completed_recurring_instances")
def cleanup_completed_recurring_instances():
    """Delete old completed instances in batches; templates keep their history count."""
    return recurring_cleanup_completed()
