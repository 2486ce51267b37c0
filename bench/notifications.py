"""Notification events end to end vs raw kombu publish + consume of the same payload.

Usage: .venv/bin/python bench/notifications.py [--events 1000] [--concurrency 4] [--no-smtp]
Ours: `notification_create()` in its own transaction (row + publish on commit), a real worker process
(threads pool) claims a batch of rows (its own and never-attempted pending ones, up to
NOTIFICATIONS_EMAIL_BATCH_SIZE = 50), renders text + HTML and "sends" them (locmem backend), and marks
them sent; timed from the first event to the last row marked sent. Raw: kombu publishes the same JSON
payload to a Redis queue while a consumer thread drains it; timed from the first publish to the last
message consumed. Same Redis, same run. Target: ours / raw >= 0.3.
Second row: the same with a real SMTP server (aiosmtpd, in its own process on 127.0.0.1) in the loop,
so the share of the SMTP conversation shows; same raw baseline, reported without a target.
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


SMTP_SERVER = r"""
import asyncio, sys
from aiosmtpd.controller import Controller
class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
c = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()
"""


def start_smtp():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", SMTP_SERVER, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    proc.stdout.readline()
    return proc, port


def run_ours(args, users, extra_env):
    from django.db import transaction

    from notifications.models import EmailState, Notification
    from notifications.services import notification_create
    from taskmgmt.celery import app

    Notification.objects.filter(recipient__in=users).delete()
    app.connection_for_write().default_channel.client.delete("notifications")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="taskmgmt.settings.test", PYTHONPATH=str(ROOT), **extra_env)
    worker = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "celery_worker",
            "--queues",
            "notifications",
            "--pool",
            "threads",
            "--concurrency",
            str(args.concurrency),
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline:
                raise RuntimeError("worker did not start")
        started = time.perf_counter()
        for i in range(args.events):
            with transaction.atomic():
                notification_create(
                    recipient=users[i % len(users)],
                    kind="assigned",
                    text=f"bench-user assigned you to \u201cBenchmark task {i}\u201d",
                )
        published = time.perf_counter() - started
        sent = Notification.objects.filter(recipient__in=users, email_state=EmailState.SENT)
        while sent.count() < args.events:
            if time.perf_counter() - started > 600:
                raise RuntimeError("timed out waiting for the worker")
            time.sleep(0.05)
        return args.events / (time.perf_counter() - started), published
    finally:
        from tests.support import stop_process

        stop_process(worker, timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--no-smtp", action="store_true", help="skip the row with a real SMTP server")
    args = parser.parse_args()
    setup_django()
    from django.conf import settings
    from django.db import connection

    from tasks_app.tests.factories import UserFactory

    users = [UserFactory(username=f"bench-n{i}") for i in range(20)]
    ours, published = run_ours(args, users, {})
    print(f"locmem backend: {ours:,.0f} events/s (publishing alone took {published:.2f}s)", flush=True)
    smtp = None
    if not args.no_smtp:
        proc, port = start_smtp()
        try:
            smtp, _ = run_ours(
                args,
                users,
                {
                    "TEST_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                    "EMAIL_HOST": "127.0.0.1",
                    "EMAIL_PORT": str(port),
                },
            )
        finally:
            proc.stdin.close()
            proc.terminate()
    connection.close()

    # The same size of message as ours: a Celery task message for one notification id.
    payload = {"task": "notifications.send_email_notification", "args": [123456], "kwargs": {}, "padding": "x" * 400}
    raw = raw_kombu(settings.CELERY_BROKER_URL, args.events, payload)
    print(
        f"ours: {args.events} events in {args.events / ours:.2f}s ({ours:,.0f}/s; publishing alone took "
        f"{published:.2f}s); with SMTP: {smtp or 0:,.0f}/s; raw kombu: {raw:,.0f}/s; payload "
        f"{len(json.dumps(payload))} bytes"
    )
    report(
        "notification events end to end vs raw kombu publish+consume",
        ours=ours,
        baseline=raw,
        unit="events/s",
        target=">= 0.3",
    )
    if smtp is not None:
        report(
            "notification events end to end, real SMTP server in the loop, vs raw kombu",
            ours=smtp,
            baseline=raw,
            unit="events/s",
            target=">= 0",
        )


if __name__ == "__main__":
    main()
