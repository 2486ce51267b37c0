import pytest
from django_celery_results.models import TaskResult


@pytest.mark.worker
def test_ping_round_trip_stores_result(celery_worker, celery_app):
    result = celery_app.send_task("core.ping")
    assert result.get(timeout=10) == "pong"
    row = TaskResult.objects.get(task_id=result.id)
    assert row.status == "SUCCESS" and row.task_name == "core.ping"
