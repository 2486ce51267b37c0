"""django-celery-results' database backend, made safe for database outages.

Results are for observation; the side-effect rows are the record. If the database is down when a
task's state is stored, Celery raises "outside the task body", where the task cannot retry and its
message can stay unacknowledged, holding the worker's prefetch slots until it stops consuming
(seen in tests/faults/test_database_restart.py). So a state that cannot be stored is logged and
dropped, and the broken connection is closed so the next task reconnects.
"""

import logging

from django.db import DatabaseError, connections
from django_celery_results.backends.database import DatabaseBackend as _DatabaseBackend

logger = logging.getLogger(__name__)


class DatabaseBackend(_DatabaseBackend):
    def store_result(self, task_id, result, state, traceback=None, request=None, **kwargs):
        try:
            return super().store_result(task_id, result, state, traceback=traceback, request=request, **kwargs)
        except DatabaseError as exc:
            logger.warning("result of task %s (%s) not stored: %s", task_id, state, type(exc).__name__)
            for conn in connections.all(initialized_only=True):
                if conn.connection is not None and not conn.is_usable():
                    conn.close()
            return result
