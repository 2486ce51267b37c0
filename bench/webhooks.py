"""Webhook fan-out: 1 event x 1,000 subscriptions through a real worker vs raw async httpx posts.

Usage: .venv/bin/python bench/webhooks.py [--subs 1000] [--workers 4] [--concurrency 25] [--rounds 3]

Ours: trigger_webhook() writes 1,000 delivery rows and publishes deliver_webhook messages of
WEBHOOK_BATCH_SIZE ids on commit; a real Celery worker (threads pool, --workers threads) over Redis
claims each batch, signs every request and posts them with one shared httpx.AsyncClient at
--concurrency per task, then records attempts and states in the database. Timed from trigger to
the last row marked delivered.
Baseline: one httpx.AsyncClient posting the same 1,000 bodies with a semaphore of workers x
concurrency (the same number of requests in flight), nothing else.
Both hit the same receiver: a minimal keep-alive HTTP server in a separate process on 127.0.0.1.
Database: BENCH_DATABASE_URL / DATABASE_URL, else a temporary SQLite file. Target: ratio >= 0.6.
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time

RECEIVER = r"""
import asyncio, sys
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def start_receiver():
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def raw_baseline(url, body, n, in_flight):
    import httpx

    async def run():
        semaphore = asyncio.Semaphore(in_flight)
        transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight),
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])  # as ours
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            async def one():
                async with semaphore:
                    r = await client.post(url, content=body, headers={"Content-Type": "application/json"})
                    assert r.status_code == 200

            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            return time.perf_counter() - started

    return asyncio.run(run())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4, help="worker threads (deliver_webhook tasks at once)")
    parser.add_argument("--concurrency", type=int, default=25, help="requests in flight per task")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if not (os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")):
        tmp = tempfile.NamedTemporaryFile(prefix="bench-webhooks-", suffix=".sqlite3", delete=False)
        os.environ["BENCH_DATABASE_URL"] = f"sqlite:///{tmp.name}"
    from _common import report, setup_django

    setup_django()
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings
    from django.db import transaction

    from taskmgmt.celery import app
    from tasks_app import services as task_services
    from tasks_app.models import Project
    from tasks_app.tests.factories import UserFactory
    from webhooks import signing
    from webhooks.models import DeliveryState, WebhookDelivery, WebhookSubscription
    from webhooks.services import trigger_webhook

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver is on 127.0.0.1
    settings.WEBHOOK_CONCURRENCY = args.concurrency
    settings.WEBHOOK_BATCH_SIZE = -(-args.subs // args.workers)  # one batch per worker thread
    in_flight = args.workers * args.concurrency

    receiver, port = start_receiver()
    url = f"http://127.0.0.1:{port}/hook"
    owner = UserFactory(username=f"bench-webhooks-{os.getpid()}")
    project = task_services.project_create(actor=owner, name="bench webhooks")

    def make_subs(n):
        WebhookSubscription.objects.filter(project=project).delete()
        WebhookSubscription.objects.bulk_create([
            WebhookSubscription(project=project, url=url, events=["task.created"], secret=signing.generate_secret())
            for _ in range(n)])

    def fan_out(n):
        with transaction.atomic():
            ids = trigger_webhook(project_id=project.pk, event_type="task.created",
                                  data={"task": {"id": 1, "title": "bench " + "x" * 300, "version": 1}})
        return ids

    def wait_done(ids, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = WebhookDelivery.objects.filter(pk__in=ids).exclude(state=DeliveryState.DELIVERED).count()
            if not left:
                return
            time.sleep(0.02)
        raise SystemExit(f"timed out: {left} deliveries not delivered")

    app.connection_for_write().default_channel.client.delete("webhooks")  # our queue only
    ours_rates, raw_rates = [], []
    try:
        with start_worker(app, pool="threads", concurrency=args.workers, queues=["webhooks"],
                          perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30):
            make_subs(20)
            wait_done(fan_out(20))  # warm-up: imports, connections
            make_subs(args.subs)
            for _ in range(args.rounds):
                started = time.perf_counter()
                ids = fan_out(args.subs)
                wait_done(ids)
                ours_rates.append(args.subs / (time.perf_counter() - started))
                body = WebhookDelivery.objects.get(pk=ids[0]).body.encode()
                raw_rates.append(args.subs / raw_baseline(url, body, args.subs, in_flight))
    finally:
        receiver.terminate()
        Project.objects.filter(pk=project.pk).delete()
        owner.delete()
    ours, raw = max(ours_rates), max(raw_rates)
    print(f"{args.subs} subscriptions, {args.workers} worker threads x {args.concurrency} in flight "
          f"(baseline: {in_flight} in flight), database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
    print(f"ours:     {ours:,.0f} deliveries/s (rounds: {', '.join(f'{r:,.0f}' for r in ours_rates)})")
    print(f"baseline: {raw:,.0f} deliveries/s (rounds: {', '.join(f'{r:,.0f}' for r in raw_rates)})")
    report("webhooks fan-out 1x1000", ours=ours, baseline=raw, unit="deliveries/s", target=">= 0.6")


if __name__ == "__main__":
    main()
