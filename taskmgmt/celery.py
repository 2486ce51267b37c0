"""The Celery app. Configuration lives in taskmgmt/celery_settings.py (read via Django settings)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskmgmt.settings.local")

app = Celery("taskmgmt", task_cls="core.celery_base:BaseTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from core.worker import install as _install_worker_hooks  # noqa: E402

_install_worker_hooks(app)
