"""Notification events end to end vs raw kombu publish + consume of the same payload.

Usage: .venv/bin/python bench/notifications.py [--events 1000] [--concurrency 4]
Ours: `notification_create()` in its own transaction (row + publish on commit), a real worker process
(threads pool) claims the row, renders text + HTML and "sends" it (locmem backend), and marks it sent;
timed from the first event to the last row marked sent. Raw: kombu publishes the same JSON payload
to a Redis queue while a consumer thread drains it; timed from the first publish to the last message
consumed. Same Redis, same run. Target: ours / raw >= 0.5.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

from _common import ROOT, report, setup_django


def raw_kombu(url, events, payload):
    from kombu import Connection, Exchange, Queue

    queue = Queue("bench-raw", Exchange("", type="direct"), routing_key="bench-raw")
    done = threading.Event()
    seen = [0]

    def consume():
        with Connection(url) as conn:
            def on_message(body, message):
                message.ack()
                seen[0] += 1
                if seen[0] >= events:
                    done.set()

            with conn.Consumer(queue, callbacks=[on_message], accept=["json"]):
                while not done.is_set():
                    try:
                        conn.drain_events(timeout=1)
                    except TimeoutError:
                        pass

    with Connection(url) as conn:
        queue(conn.default_channel).declare()
        queue(conn.default_channel).purge()
    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    time.sleep(0.5)
    with Connection(url) as conn:
        producer = conn.Producer(serializer="json")
        started = time.perf_counter()
        for _ in range(events):
            producer.publish(payload, routing_key="bench-raw", retry=True)
    done.wait(120)
    return events / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    setup_django()
    from django.conf import settings
    from django.db import connection, transaction

    from notifications.models import EmailState, Notification
    from notifications.services import notification_create
    from taskmgmt.celery import app
    from tasks_app.tests.factories import UserFactory

    users = [UserFactory(username=f"bench-n{i}") for i in range(20)]
    Notification.objects.filter(recipient__in=users).delete()
    app.connection_for_write().default_channel.client.delete("notifications")

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="taskmgmt.settings.test", PYTHONPATH=str(ROOT))
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "celery_worker", "--queues", "notifications", "--pool", "threads",
         "--concurrency", str(args.concurrency), "--loglevel", "WARNING"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline:
                raise RuntimeError("worker did not start")
        started = time.perf_counter()
        for i in range(args.events):
            with transaction.atomic():
                notification_create(recipient=users[i % len(users)], kind="assigned",
                                    text=f"bench-user assigned you to \u201cBenchmark task {i}\u201d")
        published = time.perf_counter() - started
        sent = Notification.objects.filter(recipient__in=users, email_state=EmailState.SENT)
        while sent.count() < args.events:
            if time.perf_counter() - started > 600:
                raise RuntimeError("timed out waiting for the worker")
            time.sleep(0.05)
        ours = args.events / (time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    connection.close()

    # The same size of message as ours: a Celery task message for one notification id.
    payload = {"task": "notifications.send_email_notification", "args": [123456], "kwargs": {},
               "padding": "x" * 400}
    raw = raw_kombu(settings.CELERY_BROKER_URL, args.events, payload)
    print(f"ours: {args.events} events in {args.events / ours:.2f}s ({ours:,.0f}/s; publishing alone took "
          f"{published:.2f}s); raw kombu: {raw:,.0f}/s; payload {len(json.dumps(payload))} bytes")
    report("notification events end to end vs raw kombu publish+consume", ours=ours, baseline=raw,
           unit="events/s", target=">= 0.5")


if __name__ == "__main__":
    main()
