"""Test settings. Celery is NOT eager: tests start real workers over Redis."""

import os

# Tests flush their Redis database, so they never share the development one (db 0).
os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.pop("CELERY_BROKER_URL", None)

from .base import *  # noqa: F401,F403
from .base import env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = env("TEST_EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
MEDIA_ROOT = env("MEDIA_ROOT", default=str(VAR_DIR / "test-media"))
# Tests start webhook receivers on 127.0.0.1; only they are allowed through the SSRF guard.
WEBHOOK_ALLOW_PRIVATE_TARGETS = True
# A tiny app whose rows exercise the durable-enqueue mechanism (tables created without migrations).
INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405

# Fault tests compress webhook timing for their worker subprocesses through the environment
# (e.g. WEBHOOK_RETRY_SCHEDULE="1,1,1"); unset, webhooks/conf.py defaults apply.
for _name, _cast in (("WEBHOOK_TIMEOUT_SECONDS", float), ("WEBHOOK_RETRY_JITTER", float),
                     ("WEBHOOK_LEASE_SECONDS", int), ("WEBHOOK_CONCURRENCY", int), ("WEBHOOK_BATCH_SIZE", int),
                     ("WEBHOOK_REQUEUE_GRACE_SECONDS", int)):
    if os.environ.get(_name):
        globals()[_name] = _cast(os.environ[_name])
if os.environ.get("WEBHOOK_RETRY_SCHEDULE"):
    WEBHOOK_RETRY_SCHEDULE = tuple(float(s) for s in os.environ["WEBHOOK_RETRY_SCHEDULE"].split(","))
