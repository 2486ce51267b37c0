import functools

import redis
from django.conf import settings
from redis.sentinel import Sentinel

TIMEOUTS = {"socket_connect_timeout": 1, "socket_timeout": 2}


@functools.cache
def client():
    """A Redis client with short timeouts: health, beat's heartbeat, worker liveness.

    On REDIS_URL (also the broker unless CELERY_BROKER_URL names another one, e.g. RabbitMQ); with
    REDIS_SENTINELS, on the primary the sentinels name now: it re-asks them after a connection error,
    so it follows a failover."""
    if settings.REDIS_SENTINELS:
        sentinel = Sentinel(settings.REDIS_SENTINELS, sentinel_kwargs=TIMEOUTS, **TIMEOUTS)
        return sentinel.master_for(settings.REDIS_SENTINEL_MASTER, db=settings.REDIS_SENTINEL_DB, **TIMEOUTS)
    return redis.Redis.from_url(settings.REDIS_URL, **TIMEOUTS)
