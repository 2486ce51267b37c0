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
from django.db import DatabaseError, models
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
        try:
            report[box.name] = _sweep_one(box, cutoff=cutoff, now=now, batch=batch)
        except DatabaseError as exc:  # one broken outbox must not stop the others
            logger.error("outbox %s: sweep failed (%s)", box.name, type(exc).__name__)
            report[box.name] = None
    if any(count is None for count in report.values()):
        failed = [name for name, count in report.items() if count is None]
        raise DatabaseError(f"sweep failed for {', '.join(failed)}")  # recorded as a failure; the next run retries
    return report


def _sweep_one(box, *, cutoff, now, batch):
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
    return len(published)
