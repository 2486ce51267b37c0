"""Cost curves: each background job at three sizes (x1, x10, x100), time per item at each size.

Usage: DATABASE_URL=postgres://... .venv/bin/python bench/curves.py [--quick] [--only notifications webhooks ...]
A path whose cost grows faster than its input shows as a rising time per item. In-process (no broker, no
worker): the service functions the tasks call, on PostgreSQL, one round each (the box is shared, so
read the shape, not the third digit). --quick runs the x1 and x10 sizes only.

- notifications: N pending emails sent by notification_emails_deliver in batches of
  NOTIFICATIONS_EMAIL_BATCH_SIZE (locmem backend): claim, render, send, record. 100 / 1k / 10k.
- webhooks: 1 event x N subscriptions: trigger_webhook (rows + messages) and deliver_batch per
  WEBHOOK_BATCH_SIZE ids against a minimal receiver on 127.0.0.1. 100 / 1k / 10k.
- recurring: one recurring tick over N due templates (bench/recurring.py --rounds 1, its "ours" rate).
  1k / 10k / 100k.
- analytics: project_metrics over a project of N tasks. 10k / 100k / 1M.
- exports: CSV export of N tasks (export_run). 10k / 100k / 1M.
Prints one BENCH_CURVE line per job and size; `make bench` puts them in docs/benchmarks.md.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import setup_django

HERE = Path(__file__).resolve().parent

SIZES = {
    "notifications": (100, 1_000, 10_000),
    "webhooks": (100, 1_000, 10_000),
    "recurring": (1_000, 10_000, 100_000),
    "analytics": (10_000, 100_000, 1_000_000),
    "exports": (10_000, 100_000, 1_000_000),
}


def load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def curve_line(job, size, seconds, unit):
    row = {"job": job, "size": size, "seconds": round(seconds, 3), "per_item_ms": round(seconds / size * 1000, 4)}
    row["unit"] = unit
    print(f"{job:>13} x {size:>9,}: {seconds:8.2f} s, {row['per_item_ms']:.4f} ms per {unit}", flush=True)
    print("BENCH_CURVE " + json.dumps(row), flush=True)


def owner_and_project(label):
    from tasks_app.services.projects import project_create
    from tasks_app.tests.factories import UserFactory

    owner = UserFactory(username=f"bench-curves-{label}-{os.getpid()}")
    return owner, project_create(actor=owner, name=f"bench curves {label}")


def notifications(n):
    from django.conf import settings

    from notifications import conf
    from notifications.models import EmailState, Kind, Notification
    from notifications.sending import notification_emails_deliver
    from tasks_app.tests.factories import UserFactory

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    users = [UserFactory(username=f"bench-curves-n{os.getpid()}-{i}") for i in range(20)]
    rows = Notification.objects.bulk_create(
        [
            Notification(recipient=users[i % 20], kind=Kind.ASSIGNED, text=f"n{i}", email_state=EmailState.PENDING)
            for i in range(n)
        ]
    )
    ids = [r.pk for r in rows]
    size = conf.NOTIFICATIONS_EMAIL_BATCH_SIZE
    started = time.perf_counter()
    for i in range(0, n, size):
        notification_emails_deliver(notification_ids=ids[i : i + size])
    elapsed = time.perf_counter() - started
    assert Notification.objects.filter(pk__in=ids, email_state=EmailState.SENT).count() == n
    from django.core import mail

    mail.outbox = []
    Notification.objects.filter(recipient__in=users).delete()
    for user in users:
        user.delete()
    return elapsed


def webhooks(n):
    from django.conf import settings
    from django.db import transaction

    from tasks_app.models import Project
    from webhooks import conf, signing
    from webhooks.delivery import deliver_batch
    from webhooks.models import DeliveryState, WebhookDelivery, WebhookSubscription
    from webhooks.services import trigger_webhook

    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    receiver, port = load("webhooks").start_receiver()
    owner = project = None
    try:
        owner, project = owner_and_project("webhooks")
        WebhookSubscription.objects.bulk_create(
            [
                WebhookSubscription(
                    project=project,
                    url=f"http://127.0.0.1:{port}/hook",
                    events=["task.created"],
                    secret=signing.generate_secret(),
                )
                for _ in range(n)
            ]
        )
        started = time.perf_counter()
        with transaction.atomic():
            ids = trigger_webhook(project_id=project.pk, event_type="task.created", data={"task": {"id": 1}})
        size = conf.WEBHOOK_BATCH_SIZE
        for i in range(0, len(ids), size):
            deliver_batch(delivery_ids=ids[i : i + size])
        elapsed = time.perf_counter() - started
        assert WebhookDelivery.objects.filter(pk__in=ids, state=DeliveryState.DELIVERED).count() == n
    finally:
        receiver.terminate()
        if project is not None:
            Project.objects.filter(pk=project.pk).delete()
            owner.delete()
    from taskmgmt.celery import app

    app.connection_for_write().default_channel.client.delete("webhooks")  # the messages trigger published
    return elapsed


def recurring(n):
    out = subprocess.run(
        [sys.executable, str(HERE / "recurring.py"), "--templates", str(n), "--rounds", "1", "--scenario", "copy"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    if out.returncode:
        raise SystemExit(f"bench/recurring.py --templates {n} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    lines = out.stdout.splitlines()
    result = next(json.loads(line.split(" ", 1)[1]) for line in lines if line.startswith("BENCH_RESULT "))
    return n / result["ours"]  # "ours" is rows (= templates) per second


def analytics(n):
    from analytics.metrics import project_metrics

    project, _ = load("analytics").ensure_project(n)
    project_metrics(project_id=project.pk)  # warm: plan and page cache
    started = time.perf_counter()
    project_metrics(project_id=project.pk)
    return time.perf_counter() - started


def exports(n):
    module = load("exports")
    module.media_dir()
    project, owner = module.generator()(n, label="exports")
    elapsed, job = module.run_export(project, owner, "csv")
    job.file.delete(save=False)
    return elapsed


JOBS = {
    "notifications": (notifications, "email"),
    "webhooks": (webhooks, "delivery"),
    "recurring": (recurring, "template"),
    "analytics": (analytics, "task"),
    "exports": (exports, "row"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="x1 and x10 only")
    parser.add_argument("--only", nargs="*", choices=sorted(JOBS))
    args = parser.parse_args()
    if "postgres" not in (os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""):
        raise SystemExit("bench/curves.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    setup_django()
    for job, (fn, unit) in JOBS.items():
        if args.only and job not in args.only:
            continue
        if job in ("notifications", "webhooks"):
            fn(10)  # warm-up (imports, compiled templates, connections), not reported
        for size in SIZES[job][: 2 if args.quick else 3]:
            curve_line(job, size, fn(size), unit)


if __name__ == "__main__":
    main()
