"""The base class of every task: a database outage is retried, not recorded as a failure.

A PostgreSQL restart or failover drops every connection; the task's work is idempotent, so it is
retried with exponential backoff and jitter (capped at 60 s, below the visibility timeout) until
the database is back. Django's stale connection is closed first so the retry reconnects.
"""

import math

from celery import Task
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connections


class BaseTask(Task):
    autoretry_for = (OperationalError, InterfaceError)
    retry_backoff = 1
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 10

    def retry(self, *args, **kwargs):
        countdown = kwargs.get("countdown")
        if countdown and settings.BROKER_IS_AMQP:
            # Native delayed delivery (RabbitMQ quorum queues) works in whole seconds and refuses 0.
            kwargs["countdown"] = max(1, math.ceil(countdown))
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
            if conn.connection is not None and not conn.is_usable():
                conn.close()
        return super().retry(*args, **kwargs)

    def before_start(self, task_id, args, kwargs):
        close_old_connections()
