"""The periodic task form in a real browser: the registered task is selected, and the crontab help shows a
translation only for a selected crontab (never "Translation: undefined")."""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django_celery_beat.models import PeriodicTask

from core.schedules import seed_schedules

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_periodic_task_form_in_a_browser(browser, live_server):
    seed_schedules()
    get_user_model().objects.create_superuser("root", "root@example.test", "root-pass-123")
    interval_row = PeriodicTask.objects.get(name="Process Recurring Tasks")
    crontab_row = PeriodicTask.objects.get(name="Cleanup Old Webhook Deliveries")
    page = browser.new_page()
    try:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "root")
        page.fill("#id_password", "root-pass-123")
        page.click("input[type=submit]")

        page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/{interval_row.pk}/change/")
        page.wait_for_selector("#id_regtask")
        assert page.eval_on_selector("#id_regtask", "el => el.value") == "recurring.process_recurring_tasks"
        assert page.eval_on_selector("#id_regtask", "el => el.options.length") > 20
        crontab_help = page.inner_text(".field-crontab .help")
        assert "undefined" not in crontab_help and "Translation" not in crontab_help
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "admin-periodic-task-interval.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/{crontab_row.pk}/change/")
        page.wait_for_selector("#id_regtask")
        assert page.eval_on_selector("#id_regtask", "el => el.value") == "webhooks.cleanup_old_webhook_deliveries"
        crontab_help = page.inner_text(".field-crontab .help")
        assert "Translation: At 02:00 AM UTC" in crontab_help, crontab_help
        page.screenshot(path=str(ARTIFACTS / "admin-periodic-task-crontab.png"), full_page=True)

        # Clearing the crontab leaves the plain help text, not "Translation: undefined".
        page.select_option("#id_crontab", "")
        crontab_help = page.inner_text(".field-crontab .help")
        assert "undefined" not in crontab_help and "Translation" not in crontab_help
    finally:
        page.close()
