"""django-celery-beat's DatabaseScheduler, plus a heartbeat so /healthz can see beat is alive."""

import logging
import time

from django_celery_beat.schedulers import DatabaseScheduler as _DatabaseScheduler

from core import redis as core_redis

logger = logging.getLogger(__name__)
BEAT_TICK_KEY = "taskmgmt:beat:last_tick"


def record_beat_tick(now=None):
    try:
        core_redis.client().set(BEAT_TICK_KEY, str(now or time.time()), ex=24 * 3600)
    except Exception as exc:  # the heartbeat must never stop beat from scheduling
        logger.warning("could not record beat tick: %s", type(exc).__name__)


def last_beat_tick():
    value = core_redis.client().get(BEAT_TICK_KEY)
    return float(value) if value else None


class DatabaseScheduler(_DatabaseScheduler):
    def tick(self, *args, **kwargs):
        interval = super().tick(*args, **kwargs)
        record_beat_tick()
        return interval
