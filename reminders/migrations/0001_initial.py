# Reminder and SummaryDelivery, moved here from tasks_app (created by tasks_app 0003). State only:
# the existing tables keep their names (db_table) and rows; tasks_app 0005 forgot the models first.
# Their content types move too, so permissions and admin history granted on them are kept.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MOVED = ("reminder", "summarydelivery")


def _move_content_types(apps, schema_editor, source, target):
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MOVED:
        if not types.filter(app_label=target, model=model).exists():
            types.filter(app_label=source, model=model).update(app_label=target)


def content_types_forward(apps, schema_editor):
    _move_content_types(apps, schema_editor, "tasks_app", "reminders")


def content_types_backward(apps, schema_editor):
    _move_content_types(apps, schema_editor, "reminders", "tasks_app")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("tasks_app", "0005_reminders_move_out"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Reminder",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
                        ),
                        ("follows_assignee", models.BooleanField(default=False)),
                        ("remind_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "offset",
                            models.DurationField(
                                blank=True, help_text="Relative to the due date; negative is before.", null=True
                            ),
                        ),
                        ("note", models.CharField(blank=True, default="", max_length=200)),
                        ("fire_at", models.DateTimeField(blank=True, null=True)),
                        ("claimed_at", models.DateTimeField(blank=True, null=True)),
                        ("claim_token", models.CharField(blank=True, default="", max_length=32)),
                        ("sent_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "outcome",
                            models.CharField(
                                blank=True,
                                choices=[
                                    ("", "pending"),
                                    ("sent", "Sent"),
                                    ("skipped_closed", "skipped: task done or cancelled"),
                                    ("skipped_not_member", "skipped: recipient no longer a member"),
                                ],
                                default="",
                                max_length=24,
                            ),
                        ),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "recipient",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="reminders",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "task",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="reminders",
                                to="tasks_app.task",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "tasks_app_reminder",
                        "ordering": ["fire_at", "id"],
                        "indexes": [
                            models.Index(
                                condition=models.Q(("sent_at__isnull", True)), fields=["fire_at"], name="reminder_due"
                            )
                        ],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(
                                    models.Q(("offset__isnull", True), ("remind_at__isnull", False)),
                                    models.Q(("offset__isnull", False), ("remind_at__isnull", True)),
                                    _connector="OR",
                                ),
                                name="reminder_absolute_xor_relative",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="SummaryDelivery",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[("daily_summary", "Daily"), ("weekly_report", "Weekly")], max_length=16
                            ),
                        ),
                        (
                            "period_key",
                            models.CharField(help_text="Local date (YYYY-MM-DD) or ISO week (YYYY-Www).", max_length=16),
                        ),
                        ("outcome", models.CharField(default="sent", max_length=8)),
                        ("notification_id", models.BigIntegerField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="summary_deliveries",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "tasks_app_summarydelivery",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("user", "kind", "period_key"), name="uniq_summary_per_period"
                            )
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(content_types_forward, content_types_backward, elidable=True),
    ]
