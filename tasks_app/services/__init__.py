"""Writes and business rules of the tasks domain, one module per entity.

- profiles.py: profile_ensure_for_new_user, profile_update
- projects.py: project_create/update/delete, membership_add/update/remove
- tasks.py:    task_create/update/assign/delete
- comments.py: comment_create/update/delete
Recurring templates and their engine live in tasks_app.recurring (templates.py, engine.py); reminders,
the daily summary and the weekly report in the reminders app (it follows task_updated).

Every service is atomic: bad input raises ApplicationError before or instead of a partial write.
Domain events (tasks_app.signals) are sent inside the transaction so the side-effect rows other
apps write commit together with the change.
"""
