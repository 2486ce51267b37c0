import functools

import redis
from django.conf import settings


@functools.cache
def client():
    """A Redis client on the broker's server, with short timeouts (health and bookkeeping only)."""
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=2)
