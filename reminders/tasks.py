"""Queue `reminders`: thin tasks over reminders.services and reminders.summaries. All idempotent.

The names are stable (PeriodicTask rows and the `reminders.*` route use them); they predate this app.
"""

from celery import shared_task

from reminders import services, summaries


@shared_task(name="reminders.send_reminder_notifications")
def send_reminder_notifications():
    """Periodic (every 15 min): claim every due, unsent reminder and queue send_task_reminder for each."""
    return services.reminders_claim_due()


@shared_task(name="reminders.send_task_reminder")
def send_task_reminder(reminder_id):
    """Write the reminder's notification (in-app and email per preferences); marks it sent exactly once."""
    return services.reminder_send(reminder_id=reminder_id)


@shared_task(name="reminders.send_daily_task_summary")
def send_daily_task_summary():
    """Hourly: the daily summary of every user whose local morning hour has come (batched)."""
    return summaries.daily_summaries_send()


@shared_task(name="reminders.send_weekly_productivity_report")
def send_weekly_productivity_report():
    """Hourly: the weekly report of every user at their local Monday morning (batched)."""
    return summaries.weekly_reports_send()
