"""Celery tasks of tasks_app, one module per queue (autodiscovery imports this package)."""

from tasks_app.tasks import recurring  # noqa: F401
from tasks_app.tasks import reminders  # noqa: F401
