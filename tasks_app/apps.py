from django.apps import AppConfig


class TasksAppConfig(AppConfig):
    name = "tasks_app"
    verbose_name = "Tasks"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from core import outbox
        from tasks_app.models import RecurringTaskTemplate
        from tasks_app.services.profiles import profile_ensure_for_new_user

        post_save.connect(profile_ensure_for_new_user, sender=get_user_model(), dispatch_uid="profile_for_user")
        # Template changes not yet applied to instances (the apply message was lost or the broker was down).
        outbox.register(
            name="tasks_app.recurring_template_apply",
            queryset=lambda: RecurringTaskTemplate.objects.filter(apply_pending=True),
            task_name="recurring.update_recurring_task_template",
        )
