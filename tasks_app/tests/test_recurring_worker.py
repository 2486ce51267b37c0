"""End to end on real processes: a worker over Redis runs the recurring.* tasks; a real beat sends them."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult

from tasks_app.models import Task
from tasks_app.recurring.service import RecurrenceService
from tasks_app.tests.recurring_helpers import make_template
from tests.support import stop_process, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.worker


def _results(name):
    return TaskResult.objects.filter(task_name=name, status="SUCCESS").count()


def test_worker_creates_instances_idempotently_and_applies_template_updates(start_celery_worker, cast, api):
    template = make_template(cast, dtstart=timezone.now() + timedelta(minutes=5), lead_time=timedelta(hours=1))
    with start_celery_worker(queues=["recurring"]):
        RecurrenceService.process_recurring_tasks()
        instance = wait_until(lambda: Task.objects.filter(recurring_template=template).first(), "the instance")
        wait_until(lambda: _results("recurring.process_recurring_tasks") == 1, "the first run's result")
        RecurrenceService.process_recurring_tasks()  # a second run, as after a redelivery
        wait_until(lambda: _results("recurring.process_recurring_tasks") == 2, "the second run's result")
        assert Task.objects.filter(recurring_template=template).count() == 1

        r = api(cast.member).patch(
            f"/api/v1/recurring-tasks/{template.pk}/", {"title": "Water all plants"}, format="json"
        )
        assert r.status_code == 200
        wait_until(
            lambda: Task.objects.get(pk=instance.pk).title == "Water all plants", "the update to reach the instance"
        )
        template.refresh_from_db()
        assert not template.apply_pending


def test_real_beat_sends_the_periodic_task_and_a_worker_creates_instances(
    subprocess_env, start_celery_worker, cast, tmp_path
):
    template = make_template(cast, dtstart=timezone.now() + timedelta(minutes=5), lead_time=timedelta(hours=1))
    PeriodicTask.objects.create(
        name="Process Recurring Tasks (every 2 s)",
        task="recurring.process_recurring_tasks",
        queue="recurring",
        exchange="recurring",
        routing_key="recurring",
        interval=IntervalSchedule.objects.create(every=2, period=IntervalSchedule.SECONDS),
    )
    log = open(tmp_path / "beat.log", "w")
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "taskmgmt",
            "beat",
            "-S",
            "core.beat:DatabaseScheduler",
            "-l",
            "INFO",
            "--pidfile=",
            "-s",
            str(tmp_path / "beat-schedule"),
        ],
        cwd=ROOT,
        env=subprocess_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with start_celery_worker(queues=["recurring"]):
            try:
                wait_until(lambda: _results("recurring.process_recurring_tasks") >= 2, "two beat-sent runs", timeout=40)
            except AssertionError:
                raise AssertionError((tmp_path / "beat.log").read_text()[-3000:])
            instances = Task.objects.filter(recurring_template=template)
            assert instances.count() == 1  # every later tick found nothing more to create
            assert instances.get().occurrence_at == template.next_occurrence_at
    finally:
        stop_process(beat)
        log.close()
