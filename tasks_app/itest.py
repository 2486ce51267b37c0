"""Flows for scripts/test_async_integration.py: recurring instances made and updated by the running worker."""

import os
import uuid
from datetime import timedelta

from core.itest import flow, wait_for


@flow
def recurring_instances(timeout):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from taskmgmt.celery import app
    from tasks_app.models import Task
    from tasks_app.recurring.templates import recurring_template_create, recurring_template_update
    from tasks_app.services.projects import project_create

    suffix = uuid.uuid4().hex[:8]
    owner = get_user_model().objects.create_user(f"itest-recurring-owner-{suffix}")
    project = project_create(actor=owner, name=f"itest-recurring-{suffix}")
    try:
        template = recurring_template_create(
            actor=owner,
            project=project,
            title="itest daily",
            rrule="FREQ=DAILY",
            timezone="Europe/Berlin",
            dtstart=timezone.now() + timedelta(minutes=5),
            lead_time=timedelta(hours=1),
        )
        for _ in range(2):  # the second run must find nothing new
            app.send_task("recurring.process_recurring_tasks").get(timeout=timeout)
        instances = Task.objects.filter(recurring_template=template)
        assert instances.count() == 1, instances.count()
        recurring_template_update(template=template, actor=owner, data={"title": "itest daily (renamed)"})
        wait_for(
            lambda: instances.filter(title="itest daily (renamed)").exists(),
            timeout,
            "the template change to reach the instance",
        )
        return f"template {template.pk}: 1 instance after two runs, template update applied by the worker"
    finally:
        if not os.environ.get("ITEST_KEEP"):
            project.delete()
            owner.delete()
