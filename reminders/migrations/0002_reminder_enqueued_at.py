# Reminder.enqueued_at: a claimed, unsent reminder is an outbox row (core/outbox.py, reminders/apps.py).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reminders", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="reminder",
            name="enqueued_at",
            field=models.DateTimeField(
                blank=True, help_text="When the outbox sweep last re-published this claim's message.", null=True
            ),
        ),
    ]
