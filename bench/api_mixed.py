"""Mixed API load under gunicorn with every side effect on, next to the bare same-SQL view of bench/api_tasks.py.

Usage: .venv/bin/python bench/api_mixed.py [--duration 10 | --requests N] [--clients 4] [--workers 2]
       [--worker-concurrency 4] [--quick]

World (a fresh project per run): an owner (the one API token all clients use), --members members with
email addresses, --tasks tasks, one webhook subscription to every event pointing at a receiver on
127.0.0.1 (tests/support Receiver), notification emails going to a real SMTP server on 127.0.0.1
(tests/support SMTPServer, aiosmtpd) through Django's SMTP backend in a real Celery worker
(`manage.py celery_worker`, every queue, threads pool). gunicorn serves the shipped test settings
(taskmgmt.settings.test, as bench/api_tasks.py), --workers sync workers, on 127.0.0.1 only.

Load: closed loop, --clients threads, each with its own keep-alive httpx.Client, for --duration seconds
or until --requests requests in all. Mix: 30% GET list (?page_size=50), 30% GET detail, 15% POST task
(assigned to a member: notification + email + task.created/task.assigned webhooks), 15% PATCH task (title
and a new assignee: notification + email + task.updated/task.assigned webhooks), 10% POST comment with an
@mention of a member (notification + email + comment.created webhook). Every client PATCHes only its own
tasks, so the expected notifications are known; any non-2xx answer stops the run.

Then: the time from the last response until every side effect it caused is delivered (every
notification row of the run emailed and in the SMTP inbox, every webhook delivery of the run marked
delivered and seen by the receiver), polled every 50 ms.

Baselines, same client, same clients, same gunicorn configuration, same run: the GET list alone on our
API, and the bare Django view running the same SQL (bench/bare_urls.py `same_sql`, SQL captured from ours
as in bench/api_tasks.py). Rows carry no target (issue 18 states none for this benchmark).
"""

import argparse
import json
import math
import os
import random
import sys
import threading
import time
from collections import defaultdict

import httpx
from _common import ROOT, report, setup_django
from api_tasks import capture, serve

MIX = (("GET list", 30), ("GET detail", 30), ("POST task", 15), ("PATCH task", 15), ("POST comment", 10))
LIST_PATH = "/api/v1/tasks/?page_size=50"


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)  # nearest rank: the smallest value with at least q% of the values at or below it
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def seed(args):
    from accounts.services import api_token_create
    from tasks_app.models import Task
    from tasks_app.services.projects import membership_add, project_create
    from tasks_app.tests.factories import UserFactory

    tag = f"mixed{os.getpid()}"
    owner = UserFactory(username=f"{tag}-owner")
    _, key = api_token_create(user=owner, name="bench mixed")
    project = project_create(actor=owner, name=f"bench {tag}")
    members = [UserFactory(username=f"{tag}-m{i}") for i in range(args.members)]
    for user in members:
        membership_add(project=project, actor=owner, user=user)
    tasks = Task.objects.bulk_create(
        [
            Task(project=project, title=f"Mixed task {i}", description="x" * 200, created_by=owner, priority=1 + i % 4)
            for i in range(args.tasks)
        ]
    )
    return owner, key, project, members, [t.pk for t in tasks]


def subscribe(project, owner, url):
    from webhooks import signing
    from webhooks.models import Event, WebhookSubscription

    return WebhookSubscription.objects.create(
        project=project, url=url, events=list(Event.values), secret=signing.generate_secret(), created_by=owner
    )


class Client(threading.Thread):
    """One closed-loop client: send, wait for the answer, record (kind, seconds, status), repeat."""

    def __init__(self, index, base, token, shared, own_tasks, members, project_id, budget):
        super().__init__(daemon=True)
        self.index, self.base, self.token, self.shared = index, base, token, shared
        self.own = dict.fromkeys(own_tasks)  # task id -> index of its assignee in members (None: nobody)
        self.members, self.project_id, self.budget = members, project_id, budget
        self.records, self.expected_notifications, self.error = [], 0, None
        self.rng = random.Random(index)

    def pick(self):
        roll, acc = self.rng.uniform(0, 100), 0
        for kind, weight in MIX:
            acc += weight
            if roll < acc:
                return kind
        return MIX[-1][0]

    def request(self, client, kind):
        if kind == "GET list":
            return client.get(self.shared["list_path"]), 0
        if kind == "GET detail":
            return client.get(f"/api/v1/tasks/{self.rng.choice(self.shared['task_ids'])}/"), 0
        if kind == "POST task":
            who = self.rng.randrange(len(self.members))
            r = client.post(
                "/api/v1/tasks/",
                json={
                    "project": self.project_id,
                    "title": f"Created by client {self.index}",
                    "assignee": self.members[who],
                },
            )
            if r.status_code == 201:
                self.own[r.json()["id"]] = who
            return r, 1
        if kind == "PATCH task":
            pk = self.rng.choice(list(self.own))
            previous = self.own[pk]
            who = 0 if previous is None else (previous + 1) % len(self.members)
            r = client.patch(
                f"/api/v1/tasks/{pk}/", json={"title": f"Edited {self.rng.random():.6f}", "assignee": self.members[who]}
            )
            if r.status_code == 200:
                self.own[pk] = who
            return r, 1
        who = self.rng.randrange(len(self.members))
        pk = self.rng.choice(self.shared["task_ids"])
        body = f"Looks good, @{self.shared['usernames'][who]} can you check the numbers?"
        return client.post(f"/api/v1/tasks/{pk}/comments/", json={"body": body}), 1

    def run(self):
        headers = {"Authorization": f"Token {self.token}"}
        try:
            with httpx.Client(base_url=self.base, headers=headers, timeout=120, trust_env=False) as client:
                while True:
                    with self.shared["lock"]:
                        if self.shared["stop"] or time.monotonic() >= self.shared["deadline"]:
                            return
                        if self.budget is not None:
                            if self.shared["sent"] >= self.budget:
                                return
                            self.shared["sent"] += 1
                    kind = self.pick()
                    started = time.perf_counter()
                    response, notifications = self.request(client, kind)
                    ended = time.perf_counter()
                    self.records.append((kind, ended - started, response.status_code, ended))
                    if not 200 <= response.status_code < 300:
                        self.error = f"{kind}: {response.status_code} {response.text[:300]}"
                        self.shared["stop"] = True
                        return
                    self.expected_notifications += notifications
        except Exception as exc:  # a refused or reset connection is a failure of the run, not of one client
            self.error = f"{type(exc).__name__}: {exc}"
            self.shared["stop"] = True


def closed_loop(
    base,
    token,
    clients,
    duration,
    budget,
    *,
    kinds=None,
    own=None,
    members=(),
    project_id=None,
    shared=None,
    list_path=LIST_PATH,
):
    """Run the closed loop; returns (records, seconds, expected notifications). kinds=("GET list",): GETs only."""
    shared = dict(shared or {}, lock=threading.Lock(), stop=False, sent=0, list_path=list_path)
    shared["deadline"] = time.monotonic() + (duration if budget is None else 3600)
    threads = [
        Client(i, base, token, shared, (own or {}).get(i, [0]), list(members) or [None], project_id, budget)
        for i in range(clients)
    ]
    if kinds is not None:
        for t in threads:
            t.pick = lambda: kinds[0]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    errors = [t.error for t in threads if t.error]
    if errors:
        raise SystemExit(f"non-2xx or failed request, run stopped: {errors[0]}")
    records = [r for t in threads for r in t.records]
    return records, seconds, sum(t.expected_notifications for t in threads)


def summarize(label, records, seconds):
    by_kind = defaultdict(list)
    for kind, latency, _, _ in records:
        by_kind[kind].append(latency * 1000)
    every = [latency * 1000 for _, latency, _, _ in records]
    lines = [
        f"{label}: {len(records):,} requests in {seconds:.2f}s = {len(records) / seconds:,.1f} req/s, "
        f"p50 {percentile(every, 50):.1f} ms, p99 {percentile(every, 99):.1f} ms"
    ]
    for kind, _ in MIX:
        if by_kind.get(kind):
            values = by_kind[kind]
            lines.append(
                f"  {kind:<13} {len(values):>6,} requests, {len(values) / seconds:8,.1f} req/s, "
                f"p50 {percentile(values, 50):7.1f} ms, p99 {percentile(values, 99):7.1f} ms"
            )
    print("\n".join(lines), flush=True)
    return by_kind, every


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds of mixed load (ignored with --requests)")
    parser.add_argument("--requests", type=int, default=None, help="stop after this many requests in all")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--worker-concurrency", type=int, default=4, help="Celery worker threads")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 4 s per load, 2 clients")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.clients = min(args.duration, 4), min(args.clients, 2)
    baseline_seconds = args.duration if args.requests is None else None

    setup_django()
    import logging

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    from django.conf import settings
    from django.db import connection

    from notifications.models import EmailState, Notification
    from taskmgmt.celery import app
    from tasks_app.models import Project
    from tests.support import Receiver, SMTPServer, free_port, stop_process
    from webhooks.models import DeliveryState, WebhookDelivery

    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    owner, token, project, members, task_ids = seed(args)
    body_path, sql_path = ROOT / "var" / "bench-mixed-body.json", ROOT / "var" / "bench-mixed-sql.json"

    receiver = Receiver()
    smtp = SMTPServer()
    smtp.start()
    subscription = subscribe(project, owner, receiver.url())
    redis = app.connection_for_write().default_channel.client
    redis.delete(*settings.QUEUE_NAMES)  # our Redis database's queues only
    connection.close()

    env = dict(
        os.environ,
        BENCH_BARE_BODY=str(body_path),
        BENCH_BARE_SQL=str(sql_path),
        CONN_MAX_AGE="60",
        PYTHONPATH=str(ROOT),
        DJANGO_SETTINGS_MODULE="taskmgmt.settings.test",
        TEST_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
    )
    import subprocess

    worker = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "celery_worker",
            "--pool",
            "threads",
            "--concurrency",
            str(args.worker_concurrency),
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,  # the startup banner; warnings and errors still reach stderr
    )
    procs = [worker]
    member_ids = [u.pk for u in members]
    usernames = [u.username for u in members]
    emails = {u.email for u in members}
    results = {}
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline:
                raise SystemExit("worker did not start")

        # 1. Ours: the mix, with side effects, then the drain.
        port = free_port()
        gunicorn = serve("taskmgmt.settings.test", port, args.workers, env)
        procs.append(gunicorn)
        base = f"http://127.0.0.1:{port}"
        check = httpx.get(base + LIST_PATH, headers={"Authorization": f"Token {token}"}, timeout=120)
        check.raise_for_status()
        closed_loop(base, token, args.clients, 2, None, kinds=("GET list",))  # warm-up, reads only
        own = {i: task_ids[i :: args.clients] for i in range(args.clients)}
        shared = {"task_ids": task_ids, "usernames": usernames}
        started_at = time.time()
        first_notification = Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        records, seconds, expected = closed_loop(
            base,
            token,
            args.clients,
            args.duration,
            args.requests,
            own=own,
            members=member_ids,
            project_id=project.pk,
            shared=shared,
        )
        last_response = max(r[3] for r in records)
        by_kind, every = summarize(
            f"mix ({db}, {args.clients} clients, {args.workers} gunicorn workers)", records, seconds
        )
        results["mix"] = (len(records) / seconds, by_kind)

        # Side effects: every row was written in its request's transaction, so the set is known now.
        run_notifications = Notification.objects.filter(pk__gt=first_notification, recipient__in=members)
        deliveries = WebhookDelivery.objects.filter(subscription=subscription)
        n_notifications = run_notifications.count()
        n_emails = run_notifications.exclude(email_state=EmailState.SKIPPED).count()
        n_deliveries = deliveries.count()
        if n_notifications != expected:
            raise SystemExit(f"{n_notifications} notification rows, expected {expected}")

        def inbox():
            with smtp.inbox._lock:
                return sum(1 for _, rcpts in smtp.inbox.envelopes if set(rcpts) & emails)

        def delivered():
            pending = run_notifications.filter(email_state__in=[EmailState.PENDING, EmailState.SENDING]).count()
            waiting = deliveries.filter(state=DeliveryState.PENDING).count()
            return not pending and not waiting and inbox() >= n_emails and receiver.unique() >= n_deliveries

        timeout = 600
        while not delivered():
            if time.perf_counter() - last_response > timeout:
                raise SystemExit("side effects not delivered within 600 s")
            time.sleep(0.05)
        drained = time.perf_counter() - last_response
        failed_emails = run_notifications.filter(email_state=EmailState.FAILED).count()
        failed_hooks = deliveries.exclude(state=DeliveryState.DELIVERED).count()
        if failed_emails or failed_hooks:
            raise SystemExit(f"{failed_emails} emails and {failed_hooks} webhook deliveries not delivered")
        whole = time.perf_counter() - (last_response - seconds)
        print(
            f"side effects: {n_notifications} notification rows, {inbox()} emails in the SMTP inbox (expected "
            f"{n_emails}), {n_deliveries} webhook deliveries delivered ({receiver.total()} requests at the receiver); "
            f"every one delivered {drained:.2f}s after the last response ({whole:.2f}s after the first request; "
            f"load started {time.strftime('%H:%M:%S', time.localtime(started_at))})",
            flush=True,
        )

        # The SQL of our GET list now that the run's writes are in (the bare view replays it, parameters included).
        response, queries = capture(token)  # token lookup, fingerprint, page, the page's labels
        body_path.write_bytes(response.content)
        sql_path.write_text(json.dumps(queries, default=str))
        connection.close()

        # 2. Ours, GET list alone, same client.
        records, seconds, _ = closed_loop(base, token, args.clients, baseline_seconds or 4, None, kinds=("GET list",))
        alone, _ = summarize("our GET list alone", records, seconds)
        results["alone"] = (len(records) / seconds, alone)
        stop_process(gunicorn, timeout=20)
        procs.remove(gunicorn)

        # 3. The bare view running the same SQL, same client.
        port = free_port()
        gunicorn = serve("bench.bare_settings", port, args.workers, env)
        procs.append(gunicorn)
        base = f"http://127.0.0.1:{port}"
        got = httpx.get(base + "/bare/tasks/?page_size=50", headers={"Authorization": f"Token {token}"}, timeout=120)
        assert {**got.json(), "next": None} == {**response.json(), "next": None}, "the bare view answers other JSON"
        bare_path = "/bare/tasks/?page_size=50"
        closed_loop(base, token, args.clients, 2, None, kinds=("GET list",), list_path=bare_path)  # warm-up
        records, seconds, _ = closed_loop(
            base, token, args.clients, baseline_seconds or 4, None, kinds=("GET list",), list_path=bare_path
        )
        bare, _ = summarize("bare same-SQL view", records, seconds)
        results["bare"] = (len(records) / seconds, bare)
    finally:
        for proc in reversed(procs):
            stop_process(proc, timeout=30)
        receiver.close()
        smtp.stop()
        Project.objects.filter(pk=project.pk).delete()
        for user in [owner, *members]:
            user.delete()

    bare_rate, bare = results["bare"]
    mix_rate, mix = results["mix"]
    alone_rate, alone = results["alone"]
    bare_get = bare["GET list"]
    suffix = f"({args.clients} clients, {db})"
    report(
        f"mixed API load, all requests, vs bare same-SQL GET {suffix}",
        ours=mix_rate,
        baseline=bare_rate,
        unit="req/s",
        target=None,
    )
    report(
        f"GET list alone vs bare same-SQL GET, same client {suffix}",
        ours=alone_rate,
        baseline=bare_rate,
        unit="req/s",
        target=None,
    )
    for q in (50, 99):
        report(
            f"GET list p{q} within the mixed load vs bare same-SQL GET p{q} {suffix}",
            ours=percentile(mix["GET list"], q),
            baseline=percentile(bare_get, q),
            unit="ms",
            target=None,
            higher_is_better=False,
        )
    print(
        "BENCH_RESULT "
        + json.dumps(
            {
                "name": f"mixed API load: every side effect delivered, after the last response {suffix}",
                "ours": round(drained, 3),
                "unit": "s",
                "target": "-",
                "met": None,
                "higher_is_better": False,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
