"""Flows for scripts/test_async_integration.py. Each app adds its own in `<app>/itest.py`:

from core.itest import flow, wait_for

@flow
def assignment_notification(timeout):
    ...  # create data, wait for the worker's outcome, return a one-line detail
"""

FLOWS = []


def flow(fn):
    FLOWS.append(fn)
    return fn


def wait_for(predicate, timeout, what):
    from tests.support import wait_until

    return wait_until(predicate, what, timeout=timeout, step=0.2)


@flow
def ping_and_result_storage(timeout):
    from django_celery_results.models import TaskResult

    from taskmgmt.celery import app

    result = app.send_task("core.ping")
    assert result.get(timeout=timeout) == "pong"
    row = wait_for(lambda: TaskResult.objects.filter(task_id=result.id).first(), timeout, "the TaskResult row")
    assert row.status == "SUCCESS", row.status
    assert row.task_name == "core.ping", row.task_name
    return f"TaskResult {row.task_id[:8]} stored with status {row.status}"
