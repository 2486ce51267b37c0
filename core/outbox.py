"""Sweep for side-effect rows whose message never arrived (broker down, worker lost, lost publish).

Each app registers its pending rows once (in AppConfig.ready):

    outbox.register(
        name="notifications.email",
        queryset=lambda: Notification.objects.filter(email_state="pending"),
        task_name="notifications.send_email_notification",
        args=lambda rows: [[row.pk for row in rows]],  # with `batch`: the task takes a list of ids
        batch=lambda: conf.NOTIFICATIONS_EMAIL_BATCH_SIZE,  # up to this many rows per message
    )

`sweep()` re-publishes rows that are still pending `OUTBOX_SWEEP_AFTER_SECONDS` after their last
publish (`enqueued_at`, or `created_at` if never re-published; see `published` below) and stamps
`enqueued_at`. Tasks are idempotent, so a row published twice is handled once.

`sweep(before=t)` instead re-publishes every pending row last published before `t` (a Unix time),
whatever its age. It runs at once when a process's publish breaker closes (the broker is back:
core/enqueue.py), when a worker (re)connects to the broker, and when a worker process is declared
dead (core/liveness.py: on Redis its prefetched messages sit unacked until the visibility timeout).

An outbox may also name `orphaned(dead_holder_ids)`: the rows claimed by holders declared dead.
Those are re-published by every sweep whatever their age; the task's claim retakes them.

`published` names the field holding when a row's message was first published: `created_at` for a
row written and published on commit; another field for a row published later (reminders: `claimed_at`,
when the run that claimed it queued its message; the claim also clears `enqueued_at`).
"""

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, models
from django.db.models import Q
from django.utils import timezone

from core import liveness
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
    orphaned: Callable[[list], models.QuerySet] | None = None
    # Rows per message when the task takes a list of ids (args=lambda rows: [[pk, ...]]); None: one row
    # per message, and `args` takes that row.
    batch: Callable[[], int] | None = None
    # The field holding when the row's message was first published (see the module doc).
    published: str = "created_at"


_registry: dict[str, Outbox] = {}


def register(*, name, queryset, task_name, args=None, orphaned=None, batch=None, published="created_at"):
    """`batch`: a callable giving how many rows one message carries (read at each sweep, so a setting
    change applies); then `args` takes a list of rows (default: `[[pk, ...]]`), even a list of one."""
    if batch is not None and args is None:
        args = _ids_list
    extra = {"args": args} if args else {}
    _registry[name] = Outbox(
        name=name, queryset=queryset, task_name=task_name, orphaned=orphaned, batch=batch, published=published, **extra
    )


def _ids_list(rows):
    return [[row.pk for row in rows]]


def registered():
    return dict(_registry)


def sweep(*, now=None, older_than=None, batch=None, before=None, dead=None):
    """Re-publish stale pending rows of every registered outbox, and rows held by dead holders.
    Returns {name: count published}."""
    now = now or timezone.now()
    older_than = older_than if older_than is not None else timedelta(seconds=settings.OUTBOX_SWEEP_AFTER_SECONDS)
    batch = batch or settings.OUTBOX_SWEEP_BATCH
    cutoff = now - older_than
    # Rows never published by a sweep, left pending before `before` (an outage, a dead worker's prefetch).
    first_cutoff = max(cutoff, datetime.fromtimestamp(before, tz=UTC)) if before is not None else cutoff
    dead = liveness.dead_holders() if dead is None else dead
    report = {}
    for box in _registry.values():
        try:
            report[box.name] = _sweep_one(
                box, cutoff=cutoff, first_cutoff=first_cutoff, now=now, batch=batch, dead=dead
            )
        except DatabaseError as exc:  # one broken outbox must not stop the others
            logger.error("outbox %s: sweep failed (%s)", box.name, type(exc).__name__)
            report[box.name] = None
    if any(count is None for count in report.values()):
        failed = [name for name, count in report.items() if count is None]
        raise DatabaseError(f"sweep failed for {', '.join(failed)}")  # recorded as a failure; the next run retries
    return report


def _sweep_one(box, *, cutoff, first_cutoff, now, batch, dead):
    first = box.published  # when a row's message was first published
    due = Q(enqueued_at__lt=cutoff) | Q(enqueued_at__isnull=True, **{f"{first}__lt": first_cutoff})
    ids = list(box.queryset().filter(due).order_by(first).values_list("pk", flat=True)[:batch])
    if dead and box.orphaned is not None:
        # Not re-published by another sweep in the last TTL; bounded by what the dead held, so in one go.
        recent = now - timedelta(seconds=settings.LIVENESS_TTL_SECONDS)
        orphaned = box.orphaned(dead).filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=recent))
        seen = set(ids)
        orphan_ids = list(orphaned.order_by(first).values_list("pk", flat=True)[: batch * 10])
        ids += [pk for pk in orphan_ids if pk not in seen]
        due |= Q(pk__in=orphan_ids) & (Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=recent))
    if not ids:
        return 0
    # Stamp first, with one conditional UPDATE: a concurrent sweep (several are queued when the broker
    # comes back) finds these rows taken and publishes each once.
    model = box.queryset().model
    model.objects.filter(due, pk__in=ids).update(enqueued_at=now)
    rows = list(model.objects.filter(pk__in=ids, enqueued_at=now).order_by(first))
    published = []
    size = max(1, box.batch()) if box.batch is not None else 1
    for i in range(0, len(rows), size):
        chunk = rows[i : i + size]
        args = box.args(chunk) if box.batch is not None else box.args(chunk[0])
        if not publish_now_rollback_unsafe(box.task_name, args=args):
            break  # broker still down: stop this round, the rows stay pending
        published += [row.pk for row in chunk]
    unpublished = [row.pk for row in rows[len(published) :]]
    if unpublished:
        model.objects.filter(pk__in=unpublished, enqueued_at=now).update(enqueued_at=None)
    if published:
        logger.info("outbox %s: re-published %d pending rows", box.name, len(published))
    return len(published)
