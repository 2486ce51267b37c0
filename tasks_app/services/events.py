"""The event log's only writer: one Event row per change, inside the change's own transaction.

Services call `event_record` right where they change something (and send their signal); the diff
(`changes`) is computed once by the service and shared by the event row and the signal receivers.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from tasks_app import conf
from tasks_app.changefeed import events_publish_on_commit
from tasks_app.models import EVENT_TYPES, Event


def _check(type):
    if type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {type!r}")


def event_build(*, type, project_id, actor=None, task_id=None, data=None, created_at=None):
    _check(type)
    return Event(
        project_id=project_id,
        task_id=task_id,
        actor_id=getattr(actor, "pk", actor),
        type=type,
        data=data or {},
        created_at=created_at or timezone.now(),
    )


def event_record(*, type, project_id, actor=None, task_id=None, data=None):
    """Insert one event. Call it inside the service's transaction.atomic block."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_record must run inside the transaction of the change it records")
    event = event_build(type=type, project_id=project_id, actor=actor, task_id=task_id, data=data)
    event.save(force_insert=True)
    events_publish_on_commit([event])
    return event


def event_record_many(events):
    """Insert events built with event_build, in one query."""
    if events:
        Event.objects.bulk_create(events)
        events_publish_on_commit(events)
    return events


def events_cleanup(*, now=None, older_than_days=None, batch_size=None):
    """Delete events older than the retention, in batches. Returns the number deleted."""
    days = conf.EVENT_RETENTION_DAYS if older_than_days is None else older_than_days
    if not days:
        return 0
    batch_size = batch_size or conf.EVENT_CLEANUP_BATCH
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted = 0
    while True:
        ids = list(Event.objects.filter(created_at__lt=cutoff).order_by("id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += Event.objects.filter(pk__in=ids).delete()[0]
