"""Check the Celery configuration and round-trip core.ping through a running worker on every queue.

Usage: make check-celery, or with the project's virtualenv active: python scripts/test_celery.py [--timeout SECONDS]
Needs Redis and a worker consuming all six queues (make run, or scripts/celery/start_worker.sh).
Exits non-zero if any check fails.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core import stackenv

# The Redis, URL and settings `make run` chose (var/stack.env), unless set in the environment.
if stackenv.load():
    print(f"using the running stack from {stackenv.STACK_ENV}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskmgmt.settings.local")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django_celery_beat.models import PeriodicTask  # noqa: E402

from core.registry import SPEC_TASKS  # noqa: E402
from core.schedules import SPEC_SCHEDULE_NAMES  # noqa: E402
from taskmgmt.celery import app  # noqa: E402

results = []


def check(name, fn):
    try:
        detail = fn()
        results.append((True, name, detail or ""))
    except Exception as exc:
        results.append((False, name, f"{type(exc).__name__}: {exc}"))


def broker():
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return app.conf.broker_url.split("@")[-1]


def json_only():
    conf = app.conf
    assert conf.task_serializer == "json", conf.task_serializer
    assert conf.result_serializer == "json", conf.result_serializer
    assert list(conf.accept_content) == ["json"], conf.accept_content
    return "task, result and accept_content are JSON only"


def queues():
    declared = {q.name for q in app.conf.task_queues}
    assert declared == set(settings.QUEUE_NAMES), declared
    return ", ".join(settings.QUEUE_NAMES)


def routes():
    wrong = {}
    for task_name, queue in SPEC_TASKS.items():
        routed = app.amqp.router.route({}, task_name)["queue"].name
        if routed != queue:
            wrong[task_name] = routed
    assert not wrong, wrong
    return f"{len(SPEC_TASKS)} task names route to their queues"


def schedules():
    present = set(PeriodicTask.objects.filter(name__in=SPEC_SCHEDULE_NAMES).values_list("name", flat=True))
    missing = sorted(set(SPEC_SCHEDULE_NAMES) - present)
    assert not missing, f"missing: {missing} (run manage.py seed_schedules)"
    return f"{len(present)} spec schedules present"


def ping_on(queue, timeout):
    def run():
        result = app.send_task("core.ping", queue=queue)
        value = result.get(timeout=timeout)
        assert value == "pong", value
        return f"pong via {queue}"

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    check("broker reachable", broker)
    check("serialization is JSON only", json_only)
    check("six queues declared", queues)
    check("all routes resolve", routes)
    check("spec schedules in the database", schedules)
    if results[0][0]:
        for queue in settings.QUEUE_NAMES:
            check(f"core.ping round trip on '{queue}'", ping_on(queue, args.timeout))
    width = max(len(name) for _, name, _ in results)
    for ok, name, detail in results:
        print(f"[{'PASS' if ok else 'FAIL'}] {name:<{width}}  {detail}")
    failed = sum(1 for ok, _, _ in results if not ok)
    print(f"\n{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
