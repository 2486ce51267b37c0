"""Every operation in the generated OpenAPI schema, tried by an outsider against another user's objects.

The table of expectations is derived from the schema itself, so a new endpoint is swept (or fails the coverage
assertion) without anyone remembering to add it. Alice owns a full world; Bob owns an identical one. Alice:
- on any path naming one of Bob's objects (and on nested paths pairing her parent with Bob's child) gets 404;
- on collections gets 200 with none of Bob's data in the body;
- creating objects inside Bob's project (tasks, webhooks, exports, recurring templates) is refused with 4xx;
and anonymous callers get 401 everywhere except the token endpoint (the one-click unsubscribe link is an
HTML page outside the API: notifications/tests/test_unsubscribe_pages.py).
Bob's rows are compared before and after: nothing of his changed.
"""

import json

from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

METHODS = ("get", "post", "put", "patch", "delete")
# One body for every write: unknown keys are ignored by the serializers, known ones are valid where possible,
# so a missing permission check would show up as a 2xx rather than hide behind a 400.
WRITE_BODY = {
    "title": "pwned",
    "name": "pwned",
    "body": "pwned",
    "description": "pwned",
    "role": "admin",
    "url": "http://127.0.0.1:9/pwned",
    "events": ["task.created"],
    "status": "done",
    "priority": 1,
    "offset": "PT1H",
    "note": "pwned",
    "enabled": False,
    "is_active": False,
    "format": "csv",
    "rrule": "FREQ=DAILY",
    "dtstart": "2030-01-01T09:00:00Z",
}
UNAUTHENTICATED = {"/api/v1/auth/token/", "/api/v1/"}


def schema_operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted((path, method) for path, ops in schema["paths"].items() for method in ops if method in METHODS)


def fill(path, ids):
    for name, value in ids.items():
        path = path.replace("{" + name + "}", str(value))
    assert "{" not in path, path
    return path


def snapshot(world):
    """Bob's rows, as plain values, to prove nothing of his changed."""
    from analytics.models import ExportJob
    from notifications.models import Notification
    from reminders.models import Reminder
    from tasks_app.models import Comment, Membership, Project, RecurringTaskTemplate, Task
    from webhooks.models import WebhookDelivery, WebhookSubscription

    p = world.project
    return {
        "project": list(Project.objects.filter(pk=p.pk).values()),
        "members": list(Membership.objects.filter(project=p).order_by("pk").values()),
        "tasks": list(Task.objects.filter(project=p).order_by("pk").values()),
        "comments": list(Comment.objects.filter(task__project=p).order_by("pk").values()),
        "reminders": list(Reminder.objects.filter(task__project=p).order_by("pk").values()),
        "templates": list(RecurringTaskTemplate.objects.filter(project=p).order_by("pk").values()),
        "webhooks": list(WebhookSubscription.objects.filter(project=p).order_by("pk").values()),
        "deliveries": list(
            WebhookDelivery.objects.filter(subscription__project=p).order_by("pk").values("pk", "state", "attempts")
        ),
        "notifications": list(Notification.objects.filter(recipient=world.user).order_by("pk").values()),
        "exports": list(ExportJob.objects.filter(requester=world.user).order_by("pk").values()),
    }


def test_outsider_gets_nothing_from_any_endpoint(world, other_world):
    alice = APIClient()
    alice.credentials(HTTP_AUTHORIZATION=f"Token {world.token}")
    anonymous = APIClient()
    bob = other_world
    before = snapshot(bob)
    bob_markers = ["bob-", "bob project", "bob task", "bob weekly", bob.user.email]
    exercised, problems = set(), []

    def check(path, method, url, response, expected):
        body = response.content.decode(errors="replace")
        if response.status_code not in expected:
            problems.append(
                f"{method.upper()} {url}: {response.status_code} (expected {sorted(expected)}) {body[:200]}"
            )
        leaked = [m for m in bob_markers if m in body]
        if leaked:
            problems.append(f"{method.upper()} {url}: response shows Bob's data {leaked}")
        exercised.add((path, method))

    def send(client, method, url, data=None):
        if method in ("get", "delete"):
            return getattr(client, method)(url)
        return getattr(client, method)(url, data=json.dumps(data or WRITE_BODY), content_type="application/json")

    for path, method in schema_operations():
        if path == "/api/v1/auth/token/":
            r = alice.post(path, {"username": bob.user.username, "password": "wrong"}, format="json")
            check(path, method, path, r, {400})
            continue
        if "{" in path:
            url = fill(path, bob.ids_for(path))
            check(path, method, url, send(alice, method, url), {404})
            nested = [name for name in ("project_pk", "task_pk", "webhook_pk") if "{" + name + "}" in path]
            if nested and path.count("{") > 1:  # Alice's own parent, Bob's child
                ids = bob.ids_for(path)
                ids.update({k: v for k, v in world.ids_for(path).items() if k in nested})
                url = fill(path, ids)
                check(path, method, url, send(alice, method, url), {404})
        elif method == "get":
            check(path, method, path, alice.get(path), {200})
            if "project" in path or path.rstrip("/").split("/")[-1] in (
                "tasks",
                "webhooks",
                "exports",
                "recurring-tasks",
            ):
                url = f"{path}?project={bob.project.pk}"
                check(path, method, url, alice.get(url), {200, 400, 404})
        elif path in ("/api/v1/tasks/", "/api/v1/webhooks/", "/api/v1/exports/", "/api/v1/recurring-tasks/"):
            r = send(alice, method, path, {**WRITE_BODY, "project": bob.project.pk, "project_id": bob.project.pk})
            check(path, method, path, r, {400, 403, 404})
        else:
            # Writes on the caller's own resources only (/me/, read-all, new project): nothing of Bob's to name.
            check(path, method, path, send(alice, method, path), {200, 201, 202, 204, 400})
        if path not in UNAUTHENTICATED:
            r = send(anonymous, method, fill(path, bob.ids_for(path)))
            if r.status_code != 401:
                problems.append(f"anonymous {method.upper()} {path}: {r.status_code}")

    assert exercised == set(schema_operations())
    assert len(exercised) >= 60
    assert not problems, "\n".join(problems)
    assert snapshot(bob) == before
