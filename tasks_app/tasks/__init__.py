"""Celery tasks of tasks_app, one module per queue (autodiscovery imports this package)."""

from tasks_app.tasks import maintenance, recurring  # noqa: F401
