"""GET /healthz: database, broker, a live worker and beat's last tick. 503 if any is down."""

import time

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from core import redis as core_redis
from core.beat import last_beat_tick

BEAT_STALE_AFTER_SECONDS = 60


def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _check_broker():
    core_redis.client().ping()
    return {"ok": True}


def _check_worker():
    from taskmgmt.celery import app

    replies = app.control.ping(timeout=1.0) or []
    workers = sorted(name for reply in replies for name in reply)
    return {"ok": bool(workers), "workers": workers}


def _check_beat():
    tick = last_beat_tick()
    if tick is None:
        return {"ok": False, "last_tick": None}
    age = round(time.time() - tick, 1)
    return {"ok": age <= BEAT_STALE_AFTER_SECONDS, "age_seconds": age}


def _run(check):
    try:
        return check()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


@require_GET
def healthz(request):
    checks = {"database": _run(_check_database), "broker": _run(_check_broker)}
    if checks["broker"]["ok"]:
        checks["worker"] = _run(_check_worker)
        checks["beat"] = _run(_check_beat)
    else:
        checks["worker"] = {"ok": False, "error": "broker unreachable"}
        checks["beat"] = {"ok": False, "error": "broker unreachable"}
    ok = all(c["ok"] for c in checks.values())
    return JsonResponse({"status": "ok" if ok else "fail", "checks": checks}, status=200 if ok else 503)
