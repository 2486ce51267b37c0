"""Broker settings per engine, read from the environment by a fresh process (as a deployment would)."""

import json
import subprocess
import sys

SCRIPT = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "url": settings.CELERY_BROKER_URL,
    "options": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "amqp": settings.BROKER_IS_AMQP,
    "queues": {q.name: [q.exchange.type, q.queue_arguments] for q in settings.CELERY_TASK_QUEUES},
    "ttl": settings.LIVENESS_TTL_SECONDS,
    "cursors": settings.DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"],
    "db_options": settings.DATABASES["default"].get("OPTIONS", {}),
}))
"""


def _settings(**env):
    base = {"DJANGO_SETTINGS_MODULE": "taskmgmt.settings.local", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env={**base, **env}, capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_sentinels_put_the_broker_on_the_sentinel_transport():
    got = _settings(REDIS_SENTINELS="10.0.0.1:26379, 10.0.0.2:26380,10.0.0.3:26381", REDIS_SENTINEL_MASTER="tm")
    assert got["url"] == "sentinel://10.0.0.1:26379/0;sentinel://10.0.0.2:26380/0;sentinel://10.0.0.3:26381/0"
    assert got["options"]["master_name"] == "tm" and not got["amqp"]


def test_amqp_broker_gets_quorum_queues_topic_exchanges_and_confirms():
    got = _settings(CELERY_BROKER_URL="amqp://u:p@rabbit:5672/tm")
    assert got["amqp"] and got["options"]["confirm_publish"] is True
    assert "visibility_timeout" not in got["options"]
    assert len(got["queues"]) == 6
    assert all(v == ["topic", {"x-queue-type": "quorum"}] for v in got["queues"].values())


def test_redis_default_and_timings_from_the_environment():
    got = _settings(LIVENESS_TTL_SECONDS="7", DISABLE_SERVER_SIDE_CURSORS="True")
    assert got["url"] == "redis://127.0.0.1:6379/0" and not got["amqp"]
    assert len(got["queues"]) == 6 and all(v[0] == "direct" and not v[1] for v in got["queues"].values())
    assert got["ttl"] == 7.0 and got["cursors"] is True


def test_postgres_sessions_ask_the_server_to_probe_their_client_unless_turned_off():
    url = "postgres://u@db.example:5432/tm?options=-c%20statement_timeout%3D5000"
    options = _settings(DATABASE_URL=url)["db_options"]
    # The URL's own options are kept; the keepalives come after them.
    assert options["options"].startswith("-c statement_timeout=5000 -c tcp_keepalives_idle=10")
    assert "-c tcp_user_timeout=25000" in options["options"] and options["keepalives"] == 1
    off = _settings(DATABASE_URL=url, DATABASE_SERVER_KEEPALIVES="false")["db_options"]
    assert off["options"] == "-c statement_timeout=5000" and "keepalives" not in off
    assert "options" not in _settings()["db_options"]  # SQLite
