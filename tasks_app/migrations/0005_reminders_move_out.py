# Reminder and SummaryDelivery moved to the reminders app. State only: their tables
# (tasks_app_reminder, tasks_app_summarydelivery) stay as they are, with their rows;
# reminders 0001 adopts them under the same names.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0004_profile_local_morning_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="Reminder"),
                migrations.DeleteModel(name="SummaryDelivery"),
            ],
            database_operations=[],
        ),
    ]
