from django.apps import AppConfig


class TasksAppConfig(AppConfig):
    name = "tasks_app"
    verbose_name = "Tasks"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from tasks_app.services import profile_ensure_for_new_user

        post_save.connect(profile_ensure_for_new_user, sender=get_user_model(), dispatch_uid="profile_for_user")
