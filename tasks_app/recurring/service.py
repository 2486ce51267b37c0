"""RecurrenceService: the spec's entry point for recurring tasks, over the module functions."""

from core.enqueue import enqueue_on_commit
from tasks_app.recurring.engine import (
    recurring_cleanup_completed,
    recurring_due_templates,
    recurring_instance_create,
    recurring_process_due,
)
from tasks_app.recurring.templates import recurring_template_apply


class RecurrenceService:
    """The spec's RecurrenceService: queue the periodic run, plus the checks and creation it uses."""

    @staticmethod
    def process_recurring_tasks():
        enqueue_on_commit("recurring.process_recurring_tasks")

    due_templates = staticmethod(recurring_due_templates)
    process_due = staticmethod(recurring_process_due)
    create_instance = staticmethod(recurring_instance_create)
    apply_template_changes = staticmethod(recurring_template_apply)
    cleanup_completed = staticmethod(recurring_cleanup_completed)
