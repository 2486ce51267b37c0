"""The operations page: staff only, and it shows what the workload did."""

import pytest

from core.beat import _record_role, record_beat_tick
from ops.tests import workload

pytestmark = pytest.mark.django_db


def test_operations_page_is_staff_only(client, cast):
    assert client.get("/admin/operations/").status_code == 302  # to the admin login
    client.force_login(cast.owner)  # not staff
    assert client.get("/admin/operations/").status_code == 302


@pytest.mark.worker
def test_operations_page_after_a_workload(admin_client, api, start_celery_worker, settings, tmp_path):
    import time

    from core.schedules import seed_schedules

    seed_schedules()
    workload.run(
        api=api, start_celery_worker=start_celery_worker, settings=settings, tmp_path=tmp_path, failing_webhooks=2
    )
    record_beat_tick()
    _record_role("leader", time.time())
    response = admin_client.get("/admin/operations/")
    assert response.status_code == 200
    html = response.content.decode()
    ctx = response.context
    by_queue = {q["name"]: q for q in ctx["queues"]}
    assert by_queue["webhooks"]["day"] >= 7 and by_queue["analytics"]["day"] == 1
    assert ctx["webhooks"]["attempts"] == 7 and round(ctx["webhooks"]["success_rate"]) == 71  # 5 of 7
    assert ctx["webhooks"]["delivered"] == 5 and ctx["webhooks"]["lag_p95"] is not None
    assert [f["task"] for f in ctx["failures"]] == ["core.testapp_fail"]
    assert "ValueError: the test asked for it" in html
    assert ctx["beat"]["leader"] and ctx["beat"]["leader"] in html
    assert {b["name"] for b in ctx["outboxes"]} >= {"webhooks.delivery", "notifications.email"}
    assert "Sweep Pending Side Effects" in html
    assert html.count("<svg") >= 7  # a chart per queue, the webhook chart and gauge
    assert "<script" not in html.split('id="ops-queues"')[1]  # charts are plain SVG
