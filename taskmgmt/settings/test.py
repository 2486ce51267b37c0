"""Test settings. Celery is NOT eager: tests start real workers over Redis."""

import os

# Tests flush their Redis database, so they never share the development one (db 0).
os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.pop("CELERY_BROKER_URL", None)
# TEST_BROKER_URL=amqp://guest:guest@127.0.0.1:5672/<vhost> runs the worker tests on RabbitMQ (`make test-rabbitmq`).
if os.environ.get("TEST_BROKER_URL"):
    os.environ["CELERY_BROKER_URL"] = os.environ["TEST_BROKER_URL"]

from .base import *  # noqa: F403
from .base import VAR_DIR, env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = env("TEST_EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
MEDIA_ROOT = env("MEDIA_ROOT", default=str(VAR_DIR / "test-media"))
# Tests start webhook receivers on 127.0.0.1 (and ::1); only loopback is allowed through the SSRF guard.
WEBHOOK_ALLOWED_NETWORKS = env.list("WEBHOOK_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
# Throttling stays on in tests, with rates no ordinary test reaches (every test client is 127.0.0.1); throttle
# tests lower them with the settings fixture, live servers through THROTTLE_RATE_* in their environment.
API_THROTTLE_RATES = {
    scope: env(f"THROTTLE_RATE_{scope.upper()}", default="100000/min") for scope in ("user", "anon", "auth")
}
# Long-polls in tests (the fuzzer sends any wait up to 30) last at most 1 s unless a test raises it.
CHANGES_MAX_WAIT_SECONDS = 1
# A tiny app whose rows exercise the durable-enqueue mechanism (tables created without migrations).
INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405
