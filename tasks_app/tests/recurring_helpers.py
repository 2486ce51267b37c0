from datetime import timedelta

from tasks_app.recurring.templates import recurring_template_create


def make_template(cast, *, actor=None, **kwargs):
    args = {
        "project": cast.project,
        "title": "Water the plants",
        "rrule": "FREQ=DAILY",
        "timezone": "Europe/Berlin",
        "lead_time": timedelta(0),
        **kwargs,
    }
    return recurring_template_create(actor=actor or cast.owner, **args)


class Received:
    """Collects recurring_instances_created events, one entry per instance (task pk, template pk, in a transaction?)."""

    def __init__(self):
        self.events = []

    def __call__(self, sender, instances, **kwargs):
        from django.db import connection

        for task in instances:
            self.events.append((task.pk, task.recurring_template.pk, connection.in_atomic_block))
