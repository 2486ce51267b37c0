"""Queue `reminders`: thin tasks over tasks_app.reminders and tasks_app.summaries. All idempotent."""

from celery import shared_task

from tasks_app import reminders, summaries


@shared_task(name="reminders.send_reminder_notifications")
def send_reminder_notifications():
    """Periodic (every 15 min): claim every due, unsent reminder and queue send_task_reminder for each."""
    return reminders.reminders_claim_due()


@shared_task(name="reminders.send_task_reminder")
def send_task_reminder(reminder_id):
    """Write the reminder's notification (in-app and email per preferences); marks it sent exactly once."""
    return reminders.reminder_send(reminder_id=reminder_id)


@shared_task(name="reminders.send_daily_task_summary")
def send_daily_task_summary():
    """Hourly: the daily summary of every user whose local morning hour has come (batched)."""
    return summaries.daily_summaries_send()


@shared_task(name="reminders.send_weekly_productivity_report")
def send_weekly_productivity_report():
    """Hourly: the weekly report of every user at their local Monday morning (batched)."""
    return summaries.weekly_reports_send()
