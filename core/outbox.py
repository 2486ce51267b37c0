"""Sweep for side-effect rows whose message never arrived (broker down, worker lost, lost publish).

Each app registers its pending rows once (in AppConfig.ready):

    outbox.register(
        name="notifications.email",
        queryset=lambda: Notification.objects.filter(email_state="pending"),
        task_name="notifications.send_email_notification",
    )

`sweep()` re-publishes rows that are still pending `OUTBOX_SWEEP_AFTER_SECONDS` after their last
publish (`enqueued_at`, or `created_at` if never re-published) and stamps `enqueued_at`. Tasks are
idempotent, so a row published twice is handled once.
"""

import dataclasses
import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.enqueue import publish_now_rollback_unsafe

logger = logging.getLogger(__name__)


class OutboxRow(models.Model):
    """Fields every swept side-effect row carries."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweep last re-published this row's message."
    )

    class Meta:
        abstract = True


@dataclasses.dataclass(frozen=True)
class Outbox:
    name: str
    queryset: Callable[[], models.QuerySet]
    task_name: str
    args: Callable[[models.Model], list] = lambda row: [row.pk]


_registry: dict[str, Outbox] = {}


def register(*, name, queryset, task_name, args=None):
    _registry[name] = Outbox(name=name, queryset=queryset, task_name=task_name, **({"args": args} if args else {}))


def registered():
    return dict(_registry)


def sweep(*, now=None, older_than=None, batch=None):
    """Re-publish stale pending rows of every registered outbox. Returns {name: count published}."""
    now = now or timezone.now()
    older_than = older_than if older_than is not None else timedelta(seconds=settings.OUTBOX_SWEEP_AFTER_SECONDS)
    batch = batch or settings.OUTBOX_SWEEP_BATCH
    cutoff = now - older_than
    report = {}
    for box in _registry.values():
        stale = box.queryset().filter(
            Q(enqueued_at__lt=cutoff) | Q(enqueued_at__isnull=True, created_at__lt=cutoff)
        ).order_by("created_at")[:batch]
        published = []
        for row in stale:
            if not publish_now_rollback_unsafe(box.task_name, args=box.args(row)):
                break  # broker still down: stop this round, the rows stay pending
            published.append(row.pk)
        if published:
            box.queryset().model.objects.filter(pk__in=published).update(enqueued_at=now)
            logger.info("outbox %s: re-published %d pending rows", box.name, len(published))
        report[box.name] = len(published)
    return report
