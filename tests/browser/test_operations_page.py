"""The operations page in a real browser (Debian's Chromium) after a workload; keeps a screenshot in
artifacts/operations-page.png."""

import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from core.beat import _record_role, record_beat_tick
from core.schedules import seed_schedules
from ops.tests import workload

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
pytestmark = [pytest.mark.worker, pytest.mark.browser]


def test_operations_page_in_a_browser(browser, live_server, api, start_celery_worker, settings, tmp_path):
    seed_schedules()
    workload.run(
        api=api, start_celery_worker=start_celery_worker, settings=settings, tmp_path=tmp_path, failing_webhooks=2
    )
    record_beat_tick()
    _record_role("leader", time.time())
    get_user_model().objects.create_superuser("ops-admin", "ops-admin@example.test", "ops-pass-123")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "ops-admin")
        page.fill("#id_password", "ops-pass-123")
        page.click("input[type=submit]")
        page.click("#ops-link a")  # from the admin index
        page.wait_for_selector("#ops-queues")
        assert page.title().startswith("Operations")
        assert page.locator("#ops-queues svg.ops-chart").count() == len(settings.QUEUE_NAMES)
        assert "ValueError: the test asked for it" in page.locator("#ops-failures").inner_text()
        # 2 of the first 7 attempts failed; under load their retries may already have run: read the rows.
        from webhooks.models import WebhookAttempt

        ok, total = WebhookAttempt.objects.filter(success=True).count(), WebhookAttempt.objects.count()
        assert f"{100 * ok / total:.1f}%" in page.locator("#ops-webhooks").inner_text()
        assert ok < total
        assert page.locator("#ops-beat .ops-ok").count() == 1  # a leader is shown
        box = page.locator("#ops-webhooks svg.ops-chart").bounding_box()
        assert box and box["width"] > 100 and box["height"] > 20  # the chart renders, not a zero-size box
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "operations-page.png"), full_page=True)
    finally:
        page.close()
