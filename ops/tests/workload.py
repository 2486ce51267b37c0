"""A small real workload for the operations tests: API requests, webhooks to a real receiver (some
failing), emails into a real SMTP server, an export, and a failing task; run by a real worker."""

from datetime import timedelta

from django.utils import timezone

from tests.support import Receiver, SMTPServer, wait_until


def run(*, api, start_celery_worker, settings, tmp_path, failing_webhooks=0, failing_tasks=1, prefix="ops"):
    from notifications.models import Notification
    from tasks_app.models import Role
    from tasks_app.tests.factories import MembershipFactory, ProjectFactory, UserFactory
    from webhooks import services as webhook_services
    from webhooks.models import WebhookDelivery

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.ANALYTICS_EXPORT_TMP_DIR = str(tmp_path)
    smtp = SMTPServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", smtp.port, False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    smtp.start()
    receiver = Receiver()
    receiver.respond(*[(500, {}, "boom")] * failing_webhooks)
    try:
        owner = UserFactory(username=f"{prefix}-owner")
        project = ProjectFactory(owner=owner, name=prefix.title())
        member = MembershipFactory(
            project=project, user=UserFactory(username=f"{prefix}-member"), role=Role.MEMBER
        ).user
        webhook_services.subscription_create(
            actor=owner, project=project, url=receiver.url(), events=["task.created", "task.updated"]
        )
        client = api(owner)
        with start_celery_worker():
            for i in range(6):
                r = client.post("/api/v1/tasks/", {"project": project.pk, "title": f"t{i}"}, format="json")
                assert r.status_code == 201, r.content
            client.patch(f"/api/v1/tasks/{r.json()['id']}/", {"assignee": member.pk}, format="json")
            client.get("/api/v1/tasks/")
            client.get("/api/v1/tasks/999999/")
            export = client.post("/api/v1/exports/", {"project": project.pk, "format": "csv"}, format="json")
            assert export.status_code in (201, 202), export.content
            from taskmgmt.celery import app

            for _ in range(failing_tasks):
                app.send_task("core.testapp_fail", queue="default")
            wait_until(
                lambda: (
                    WebhookDelivery.objects.filter(subscription__project=project, state="delivered").count()
                    >= 7 - failing_webhooks
                    and WebhookDelivery.objects.filter(subscription__project=project, attempts__gte=1).count() >= 7
                ),
                "webhooks attempted",
            )
            wait_until(
                lambda: Notification.objects.filter(recipient=member, email_state="sent").exists(), "an email sent"
            )
            from analytics.models import ExportJob

            wait_until(lambda: ExportJob.objects.filter(pk=export.json()["id"], status="succeeded").exists(), "export")
            from django_celery_results.models import TaskResult

            wait_until(
                lambda: TaskResult.objects.filter(task_name="core.testapp_fail").count() >= failing_tasks,
                "the failing tasks",
            )
        return {"receiver_requests": len(receiver.requests), "emails": len(smtp.inbox.messages)}
    finally:
        receiver.close()
        smtp.stop()


def backdate_pending_email(minutes):
    """A pending email row as if its message had been lost `minutes` ago (the outbox age alert)."""
    from notifications.models import Notification

    n = Notification.objects.filter(email_state="sent").first()
    Notification.objects.filter(pk=n.pk).update(
        email_state="pending", created_at=timezone.now() - timedelta(minutes=minutes), enqueued_at=None
    )
