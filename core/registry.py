"""The 19 background tasks of the spec (docs: README "Background tasks"), with their queues.

Names are stable: PeriodicTask rows store them, so moving a module must never change a name.
"""

SPEC_TASKS = {
    "notifications.send_task_assignment_notification": "notifications",
    "notifications.send_comment_mention_notification": "notifications",
    "notifications.send_email_notification": "notifications",
    "notifications.cleanup_expired_notifications": "notifications",
    "recurring.process_recurring_tasks": "recurring",
    "recurring.create_recurring_task_instance": "recurring",
    "recurring.update_recurring_task_template": "recurring",
    "recurring.cleanup_completed_recurring_instances": "recurring",
    "webhooks.deliver_webhook": "webhooks",
    "webhooks.retry_failed_webhooks": "webhooks",
    "webhooks.cleanup_old_webhook_deliveries": "webhooks",
    "reminders.send_reminder_notifications": "reminders",
    "reminders.send_task_reminder": "reminders",
    "reminders.send_daily_task_summary": "reminders",
    "reminders.send_weekly_productivity_report": "reminders",
    "analytics.compute_user_analytics": "analytics",
    "analytics.compute_project_analytics": "analytics",
    "analytics.precompute_analytics": "analytics",
    "analytics.export_tasks_async": "analytics",
}

OUR_TASKS = {
    "core.ping": "default",
    "core.sweep_pending": "default",
    "core.cleanup_idempotency_keys": "default",
    "tasks.cleanup_old_events": "default",
    "tasks.rebalance_positions": "default",
}
