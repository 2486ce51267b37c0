"""Webhook delivery: claiming deliveries, sending them, recording attempts, scheduling retries.

Subscriptions and triggering (the rows written in the caller's transaction) are in webhooks.services.
"""

import collections
import math
import random
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core import liveness
from core.enqueue import publish_now_rollback_unsafe
from webhooks import conf, signing
from webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookSubscription
from webhooks.services import DELIVER_TASK, _disable

RETRY_AFTER_STATUSES = (429, 502, 503, 504)


# --- delivering -------------------------------------------------------------
def retry_delay(*, attempt, retry_after=None):
    """Seconds before attempt `attempt + 1`, or None when `attempt` was the last one."""
    schedule = conf.WEBHOOK_RETRY_SCHEDULE
    if attempt > len(schedule):
        return None
    base = float(schedule[attempt - 1])
    jitter = conf.WEBHOOK_RETRY_JITTER
    delay = base * random.uniform(1 - jitter, 1 + jitter) if jitter else base
    if retry_after is not None:
        delay = max(delay, min(float(retry_after), 24 * 3600.0))
    return delay


def claim(*, delivery_ids, now=None):
    """Take a lease on the deliverable rows among `delivery_ids`. One conditional UPDATE, so two workers
    (a duplicate message, a retry racing the sweep) never send the same row twice. Returns the rows."""
    now = now or timezone.now()
    token = liveness.short_claim_token()  # names this process, so a sweep can tell if it died
    WebhookDelivery.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now) | liveness.dead_claims_q("claim_token"),
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + timedelta(seconds=1)),
        pk__in=delivery_ids,
        state=DeliveryState.PENDING,
    ).update(lease_until=now + timedelta(seconds=conf.WEBHOOK_LEASE_SECONDS), claim_token=token)
    return list(WebhookDelivery.objects.filter(claim_token=token).select_related("subscription"))


def deliver_batch(*, delivery_ids):
    """One attempt for each deliverable delivery in `delivery_ids`, sent concurrently. Returns counts."""
    from webhooks.http import post_many

    rows = claim(delivery_ids=delivery_ids)
    now = timezone.now()
    sendable, cancelled = [], []
    for row in rows:
        (sendable if row.subscription.is_active else cancelled).append(row)
    if cancelled:
        WebhookDelivery.objects.filter(pk__in=[r.pk for r in cancelled]).update(
            state=DeliveryState.CANCELLED, finished_at=now, next_attempt_at=None, lease_until=None, claim_token=""
        )

    def request(row):
        body = row.body.encode()
        secrets = row.subscription.signing_secrets()

        def headers():
            return signing.signature_headers(
                secrets=secrets, msg_id=row.webhook_id, timestamp=int(time.time()), body=body
            )

        return row.pk, row.subscription.url, body, headers

    started_at = timezone.now()
    outcomes = post_many([request(r) for r in sendable]) if sendable else {}
    report = _record(rows=sendable, outcomes=outcomes, started_at=started_at)
    report["cancelled"] = len(cancelled)
    return report


def _record(*, rows, outcomes, started_at):
    now = timezone.now()
    attempts, countdowns = [], {}
    report = {"delivered": 0, "retrying": 0, "failed": 0}
    succeeded_subs, exhausted_subs, gone_subs = set(), [], set()
    for row in rows:
        out = outcomes[row.pk]
        row.attempts += 1
        ok = out.status_code is not None and 200 <= out.status_code < 300
        attempts.append(
            WebhookAttempt(
                delivery_id=row.pk,
                attempt=row.attempts,
                started_at=started_at,
                duration_ms=out.duration_ms,
                status_code=out.status_code,
                error_class=out.error_class or ("" if ok else f"HTTP {out.status_code}"),
                response_body=out.body,
                success=ok,
            )
        )
        row.last_status_code, row.last_error = out.status_code, out.error_class[:200]
        row.lease_until, row.claim_token = None, ""
        if ok:
            row.state, row.delivered_at, row.finished_at, row.next_attempt_at = DeliveryState.DELIVERED, now, now, None
            succeeded_subs.add(row.subscription_id)
            report["delivered"] += 1
            continue
        if out.status_code == 410:
            gone_subs.add(row.subscription_id)
            row.state, row.finished_at, row.next_attempt_at = DeliveryState.FAILED, now, None
            report["failed"] += 1
            continue
        retry_after = out.retry_after if out.status_code in RETRY_AFTER_STATUSES else None
        delay = retry_delay(attempt=row.attempts, retry_after=retry_after)
        if delay is None:
            row.state, row.finished_at, row.next_attempt_at = DeliveryState.FAILED, now, None
            exhausted_subs.append(row.subscription_id)
            report["failed"] += 1
        else:
            row.next_attempt_at = now + timedelta(seconds=delay)
            if delay <= min(conf.WEBHOOK_MAX_COUNTDOWN_SECONDS, settings.MAX_COUNTDOWN_SECONDS):
                countdowns[row.pk] = math.ceil(delay)
            report["retrying"] += 1

    with transaction.atomic():
        # A subscription deleted while we were sending takes its deliveries with it: record nothing for those.
        alive = set(WebhookDelivery.objects.filter(pk__in=[r.pk for r in rows]).values_list("pk", flat=True))
        rows = [r for r in rows if r.pk in alive]
        attempts = [a for a in attempts if a.delivery_id in alive]
        WebhookAttempt.objects.bulk_create(attempts)
        _bulk_record_states(rows)
        if succeeded_subs:
            WebhookSubscription.objects.filter(pk__in=succeeded_subs, consecutive_failures__gt=0).update(
                consecutive_failures=0
            )
        for sub_id in gone_subs:
            _disable(subscription_id=sub_id, reason="the endpoint answered 410 Gone")
        for sub_id in exhausted_subs:
            WebhookSubscription.objects.filter(pk=sub_id).update(consecutive_failures=F("consecutive_failures") + 1)
            failures = WebhookSubscription.objects.filter(pk=sub_id).values_list("consecutive_failures", flat=True)
            count = failures[0] if failures else 0
            if count >= conf.WEBHOOK_DISABLE_AFTER_EXHAUSTED:
                _disable(subscription_id=sub_id, reason=f"{count} deliveries in a row failed after every retry")
    # The short first retry rides on a countdown; longer waits are picked up by retry_failed_webhooks.
    by_delay = {}
    for pk, countdown in countdowns.items():
        if pk not in alive:
            continue
        by_delay.setdefault(countdown, []).append(pk)
    for countdown, ids in by_delay.items():
        publish_now_rollback_unsafe(DELIVER_TASK, args=[ids], countdown=countdown)
    return report


RECORDED_FIELDS = (
    "attempts",
    "state",
    "delivered_at",
    "finished_at",
    "next_attempt_at",
    "last_status_code",
    "last_error",
)


def _bulk_record_states(rows):
    """Write the outcome of a batch: one UPDATE per distinct outcome (all deliveries answered 200 on the same
    attempt: one statement), lease released. Django's bulk_update builds a CASE per field and row, which
    cost about 5 ms per row; rows that differ per row (a retry's jittered next_attempt_at) get their own."""
    groups = collections.defaultdict(list)
    for row in rows:
        groups[tuple(getattr(row, f) for f in RECORDED_FIELDS)].append(row.pk)
    for values, pks in groups.items():
        WebhookDelivery.objects.filter(pk__in=pks).update(
            **dict(zip(RECORDED_FIELDS, values, strict=True)), lease_until=None, claim_token=""
        )


def retry_due(*, now=None, limit=5000):
    """Queue every pending delivery whose retry is due, and every first attempt whose worker died (its
    lease lapsed), in batches. Rows are claimed by stamping enqueued_at under SELECT ... FOR UPDATE SKIP
    LOCKED (PostgreSQL) / a conditional UPDATE (SQLite), so concurrent scans do not publish the same row
    twice within the grace period. Returns the number queued."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=conf.WEBHOOK_REQUEUE_GRACE_SECONDS)
    retry_or_orphan = Q(attempts__gte=1, next_attempt_at__lte=now) | Q(attempts=0, lease_until__isnull=False)
    unleased = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | liveness.dead_claims_q("claim_token")
    not_just_queued = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff)
    due = Q(state=DeliveryState.PENDING) & retry_or_orphan & unleased & not_just_queued
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(due)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            WebhookDelivery.objects.filter(due, pk__in=ids).update(enqueued_at=now)
            ids = list(WebhookDelivery.objects.filter(pk__in=ids, enqueued_at=now).values_list("pk", flat=True))
    size = conf.WEBHOOK_BATCH_SIZE
    queued = 0
    for i in range(0, len(ids), size):
        if not publish_now_rollback_unsafe(DELIVER_TASK, args=[ids[i : i + size]]):
            WebhookDelivery.objects.filter(pk__in=ids[i:]).update(enqueued_at=None)
            break
        queued += len(ids[i : i + size])
    return queued
