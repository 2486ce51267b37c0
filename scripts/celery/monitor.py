"""Report for scripts/celery/monitor.sh: queues, workers, recent failures, beat's last tick."""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskmgmt.settings.local")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_celery_results.models import TaskResult  # noqa: E402

from core.beat import beat_instances, last_beat_tick  # noqa: E402
from core.redis import client  # noqa: E402
from taskmgmt.celery import app  # noqa: E402


def report():
    lines = [f"taskmgmt celery monitor  {timezone.now():%Y-%m-%d %H:%M:%S} UTC", "", "QUEUE            WAITING"]
    r = client()
    for name in settings.QUEUE_NAMES:
        lines.append(f"{name:<16} {r.llen(name):>7}")
    lines.append(f"{'(unacked)':<16} {r.hlen('unacked'):>7}")
    lines += ["", "WORKER                                   ACTIVE  RESERVED"]
    inspect = app.control.inspect(timeout=1.0)
    active, reserved = inspect.active() or {}, inspect.reserved() or {}
    if not active and not reserved:
        lines.append("(no worker answered)")
    for worker in sorted(set(active) | set(reserved)):
        lines.append(f"{worker:<40} {len(active.get(worker, [])):>6}  {len(reserved.get(worker, [])):>8}")
        for task in active.get(worker, [])[:5]:
            lines.append(f"    running {task['name']} [{task['id'][:8]}]")
    lines += ["", "RECENT FAILURES"]
    failures = TaskResult.objects.filter(status="FAILURE").order_by("-date_done")[:5]
    for result in failures:
        lines.append(f"{result.date_done:%H:%M:%S} {result.task_name} [{result.task_id[:8]}]")
    if not failures:
        lines.append("(none)")
    tick = last_beat_tick()
    instances, leader = beat_instances()
    lines += ["", "BEAT: " + (f"last tick {time.time() - tick:.0f}s ago" if tick else "no tick recorded")]
    lines.append(f"      leader {leader or '(none)'}; beats seen: {len(instances)}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["watch", "once"])
    parser.add_argument("--interval", type=float, default=3.0)
    args = parser.parse_args()
    if args.command == "once":
        print(report())
        return
    try:
        while True:
            text = report()
            print("\033[2J\033[H" + text, flush=True)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
