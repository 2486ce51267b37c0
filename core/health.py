"""Health endpoints, one per audience.

- GET /healthz/live    liveness: the process answers. No dependency is checked (a restart would not fix
                       a database outage), so an orchestrator never kills healthy web processes for it.
- GET /healthz/ready   readiness: database and broker answer (200, else 503). What a load balancer uses.
- GET /healthz         the same as /healthz/ready (the address load balancers were given before).
- GET /healthz/status  detailed, for staff (session) or `Authorization: Bearer $OPS_TOKEN`: workers (a
                       control ping), beats and which one leads, beat's last tick, queue depths, outbox
                       backlog. 200 when everything is up, 503 otherwise. Anonymous callers get 403 and
                       never cause a control-ping broadcast.
"""

import hmac
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core import redis as core_redis
from core.beat import beat_instances, last_beat_tick

BEAT_STALE_AFTER_SECONDS = 60


def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _check_broker():
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://", "sentinel://")):
        core_redis.client().ping()
        return {"ok": True}
    from taskmgmt.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=1)
    core_redis.client().ping()  # beat's heartbeat and worker liveness live in Redis
    return {"ok": True}


def _check_worker():
    from taskmgmt.celery import app

    replies = app.control.ping(timeout=1.0) or []
    workers = sorted(name for reply in replies for name in reply)
    return {"ok": bool(workers), "workers": workers}


def _check_beat():
    tick = last_beat_tick()
    instances, leader = beat_instances()
    out = {"leader": leader, "instances": {k: v["role"] for k, v in sorted(instances.items())}}
    if tick is None:
        return {"ok": False, "last_tick": None, **out}
    age = round(time.time() - tick, 1)
    return {"ok": age <= BEAT_STALE_AFTER_SECONDS and leader is not None, "age_seconds": age, **out}


def queue_depths():
    r = core_redis.client()
    return {name: r.llen(name) for name in settings.QUEUE_NAMES}


def _check_queues():
    return {"ok": True, "depths": queue_depths()}


def _run(check):
    try:
        return check()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _answer(checks, **extra):
    ok = all(c["ok"] for c in checks.values())
    return JsonResponse({"status": "ok" if ok else "fail", "checks": checks, **extra}, status=200 if ok else 503)


def has_ops_access(request):
    """Staff (session) or the operations token (`Authorization: Bearer ...`), when one is configured."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    token = settings.OPS_TOKEN
    header = request.headers.get("Authorization", "")
    return bool(token) and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode())


@require_GET
@never_cache
def live(request):
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def ready(request):
    return _answer({"database": _run(_check_database), "broker": _run(_check_broker)})


@require_GET
@never_cache
def status(request):
    if not has_ops_access(request):
        return JsonResponse({"detail": "Staff or the operations token only.", "code": "permission_denied"}, status=403)
    checks = {"database": _run(_check_database), "broker": _run(_check_broker)}
    for name, check in (("worker", _check_worker), ("beat", _check_beat), ("queues", _check_queues)):
        checks[name] = _run(check) if checks["broker"]["ok"] else {"ok": False, "error": "broker unreachable"}
    return _answer(checks)


healthz = ready
