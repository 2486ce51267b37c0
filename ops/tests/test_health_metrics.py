"""Liveness / readiness / detailed status, and /metrics after a workload through a real worker."""

import pytest
from django.test import Client

from core.beat import record_beat_tick

pytestmark = pytest.mark.django_db


def test_liveness_checks_nothing(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # even with the broker gone
    response = client.get("/healthz/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_checks_database_and_broker_only(client, redis_clean):
    for path in ("/healthz/ready", "/healthz"):
        response = client.get(path)
        assert response.status_code == 200, path  # no worker, no beat: still ready to serve requests
        assert set(response.json()["checks"]) == {"database", "broker"}


def test_readiness_503_when_broker_down(client, settings):
    from core import redis as core_redis

    settings.CELERY_BROKER_URL = settings.REDIS_URL = "redis://127.0.0.1:1/0"  # the broker is Redis here
    core_redis.client.cache_clear()
    try:
        response = client.get("/healthz/ready")
    finally:
        core_redis.client.cache_clear()
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "ConnectionError"}


def test_status_refuses_anonymous_without_broadcasting(client, redis_clean, monkeypatch):
    from taskmgmt.celery import app

    def no_ping(*args, **kwargs):
        raise AssertionError("anonymous callers must not cause a control ping")

    monkeypatch.setattr(app.control, "ping", no_ping)
    for path in ("/healthz/status", "/metrics"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "worker" not in response.content.decode()
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def test_status_with_token_shows_workers_beat_and_queues(celery_worker, settings):
    settings.OPS_TOKEN = "ops-secret-token"
    record_beat_tick()
    response = Client().get("/healthz/status", HTTP_AUTHORIZATION="Bearer ops-secret-token")
    body = response.json()
    assert body["checks"]["worker"]["ok"] and body["checks"]["worker"]["workers"]
    assert set(body["checks"]["queues"]["depths"]) == set(settings.QUEUE_NAMES)
    assert body["checks"]["beat"]["age_seconds"] < 60
    assert body["checks"]["beat"]["leader"] is None  # no beat leads in this test: not ok, and says so
    assert response.status_code == 503


def test_status_for_staff(admin_client, redis_clean):
    response = admin_client.get("/healthz/status")
    assert response.status_code in (200, 503)
    assert "worker" in response.json()["checks"]
