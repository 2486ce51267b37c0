"""Webhook writes: subscriptions, triggering deliveries, attempting them, retry scan and cleanup."""

import collections
import json
import logging
import math
import random
import time
import uuid
from datetime import timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.enqueue import enqueue_on_commit, publish_now_rollback_unsafe
from core.exceptions import ApplicationError, Conflict
from tasks_app.models import Role
from tasks_app.permissions import require_role
from webhooks import conf, signing
from webhooks.models import PING_EVENT, DeliveryState, Event, WebhookAttempt, WebhookDelivery, WebhookSubscription
from webhooks.ssrf import UnsafeTarget, check_url

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.deliver_webhook"
RETRY_TASK = "webhooks.retry_failed_webhooks"
RETRY_AFTER_STATUSES = (429, 502, 503, 504)


# --- subscriptions -----------------------------------------------------------
def _validate_url(url):
    try:
        check_url(url)
    except UnsafeTarget as exc:
        raise ApplicationError("The webhook URL is not allowed.", fields={"url": str(exc)}) from None


def _validate_events(events):
    valid = set(Event.values)
    unknown = [e for e in events if e not in valid]
    if unknown or not events:
        raise ApplicationError(
            "Choose at least one known event.",
            fields={"events": f"Unknown events: {', '.join(map(str, unknown))}." if unknown else "Choose at least one event."},
        )
    return sorted(set(events))


def _require_manager(*, actor, project):
    require_role(user=actor, project=project, minimum=Role.ADMIN, action="manage webhooks")


@transaction.atomic
def subscription_create(*, actor, project, url, events, description="", is_active=True):
    """Returns (subscription, whsec_ secret shown once)."""
    _require_manager(actor=actor, project=project)
    _validate_url(url)
    secret = signing.generate_secret()
    sub = WebhookSubscription.objects.create(
        project=project, url=url, events=_validate_events(events), description=description, is_active=is_active,
        secret=secret, created_by=actor,
    )
    return sub, signing.display_secret(secret)


@transaction.atomic
def subscription_update(*, subscription, actor, data):
    _require_manager(actor=actor, project=subscription.project)
    sub = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    if "url" in data:
        _validate_url(data["url"])
        sub.url = data["url"]
    if "events" in data:
        sub.events = _validate_events(data["events"])
    if "description" in data:
        sub.description = data["description"]
    if "is_active" in data and data["is_active"] != sub.is_active:
        sub.is_active = data["is_active"]
        if sub.is_active:  # re-enabling starts a fresh failure count
            sub.consecutive_failures, sub.disabled_at, sub.disabled_reason = 0, None, ""
    sub.save()
    return sub


@transaction.atomic
def subscription_delete(*, subscription, actor):
    _require_manager(actor=actor, project=subscription.project)
    subscription.delete()


@transaction.atomic
def subscription_rotate_secret(*, subscription, actor, grace_hours=None):
    """New secret now; the old one keeps signing (as a second v1 signature) for the grace period."""
    _require_manager(actor=actor, project=subscription.project)
    sub = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    grace = conf.rotation_grace_hours() if grace_hours is None else grace_hours
    sub.previous_secret = sub.secret if grace > 0 else ""
    sub.previous_secret_expires_at = timezone.now() + timedelta(hours=grace) if grace > 0 else None
    sub.secret = signing.generate_secret()
    sub.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return sub, signing.display_secret(sub.secret)


def _disable(*, subscription_id, reason):
    """Deactivate, cancel what is still pending, tell the project owner. Inside the caller's transaction."""
    from notifications.services import notification_create

    sub = WebhookSubscription.objects.select_for_update().select_related("project").filter(pk=subscription_id).first()
    if sub is None or not sub.is_active:
        return False
    sub.is_active, sub.disabled_at, sub.disabled_reason = False, timezone.now(), reason[:200]
    sub.save(update_fields=["is_active", "disabled_at", "disabled_reason", "updated_at"])
    WebhookDelivery.objects.filter(subscription=sub, state=DeliveryState.PENDING, lease_until__isnull=True).update(
        state=DeliveryState.CANCELLED, finished_at=timezone.now(), next_attempt_at=None
    )
    notification_create(
        recipient=sub.project.owner,
        kind="webhook_disabled",
        text=f"Webhook #{sub.pk} of project {sub.project.name} was disabled: {reason}",
        data={"subscription_id": sub.pk, "project_id": sub.project_id, "reason": reason},
    )
    logger.info("webhook subscription %s disabled: %s", sub.pk, reason)
    return True


# --- triggering -------------------------------------------------------------
def encode_body(payload):
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def _enqueue(delivery_ids):
    size = conf.batch_size()
    for i in range(0, len(delivery_ids), size):
        enqueue_on_commit(DELIVER_TASK, args=[list(delivery_ids[i:i + size])])


@transaction.atomic
def trigger_webhook(*, project_id, event_type, data):
    """A delivery row per active subscription of the project that wants `event_type`, in the caller's
    transaction; deliver_webhook is queued (ids only, in batches) once it commits. Returns the ids."""
    return trigger_webhooks(event_type=event_type, events=[(project_id, data)])


def trigger_webhooks(*, event_type, events):
    """trigger_webhook for many events of one type at once: `events` is [(project_id, data), ...].

    One subscription query and one bulk insert for the whole batch (e.g. a recurrence tick)."""
    project_ids = {project_id for project_id, _ in events}
    subs_by_project = collections.defaultdict(list)
    for pk, project_id, wanted in (WebhookSubscription.objects
                                   .filter(project_id__in=project_ids, is_active=True)
                                   .values_list("pk", "project_id", "events")):
        if event_type in (wanted or []):
            subs_by_project[project_id].append(pk)
    if not subs_by_project:
        return []
    now = timezone.now()
    rows = []
    for project_id, data in events:
        subs = subs_by_project.get(project_id)
        if subs:
            body = encode_body({"type": event_type, "timestamp": now.isoformat(), "data": data})
            rows += [WebhookDelivery(subscription_id=pk, event_type=event_type, body=body, created_at=now)
                     for pk in subs]
    created = WebhookDelivery.objects.bulk_create(rows)
    ids = [row.pk for row in created]
    if None in ids:  # backends without RETURNING for bulk inserts
        ids = list(WebhookDelivery.objects.filter(
            created_at=now, event_type=event_type,
            subscription_id__in=[pk for subs in subs_by_project.values() for pk in subs],
        ).values_list("pk", flat=True))
    _enqueue(ids)
    return ids


@transaction.atomic
def subscription_ping(*, subscription, actor):
    _require_manager(actor=actor, project=subscription.project)
    if not subscription.is_active:
        raise Conflict("The webhook is disabled; enable it before sending a ping.", code="inactive")
    now = timezone.now()
    body = encode_body({"type": PING_EVENT, "timestamp": now.isoformat(),
                        "data": {"subscription_id": subscription.pk, "project_id": subscription.project_id}})
    delivery = WebhookDelivery.objects.create(subscription=subscription, event_type=PING_EVENT, body=body)
    _enqueue([delivery.pk])
    return delivery


@transaction.atomic
def delivery_redeliver(*, delivery, actor):
    """A new delivery with the same body and the same webhook-id (receivers deduplicate on it)."""
    sub = delivery.subscription
    _require_manager(actor=actor, project=sub.project)
    if not sub.is_active:
        raise Conflict("The webhook is disabled; enable it before redelivering.", code="inactive")
    if delivery.state == DeliveryState.PENDING:
        raise Conflict("This delivery is still pending.", code="pending")
    copy = WebhookDelivery.objects.create(
        subscription=sub, event_type=delivery.event_type, webhook_id=delivery.webhook_id, body=delivery.body,
        redelivery_of=delivery,
    )
    _enqueue([copy.pk])
    return copy


def retry_failed_deliveries():
    """WebhookService.retry_failed_deliveries(): queue the retry scan."""
    enqueue_on_commit(RETRY_TASK)


# --- delivering -------------------------------------------------------------
def retry_delay(*, attempt, retry_after=None):
    """Seconds before attempt `attempt + 1`, or None when `attempt` was the last one."""
    schedule = conf.retry_schedule()
    if attempt > len(schedule):
        return None
    base = float(schedule[attempt - 1])
    jitter = conf.retry_jitter()
    delay = base * random.uniform(1 - jitter, 1 + jitter) if jitter else base
    if retry_after is not None:
        delay = max(delay, min(float(retry_after), 24 * 3600.0))
    return delay


def claim(*, delivery_ids, now=None):
    """Take a lease on the deliverable rows among `delivery_ids`. One conditional UPDATE, so two workers
    (a duplicate message, a retry racing the sweep) never send the same row twice. Returns the rows."""
    now = now or timezone.now()
    token = uuid.uuid4().hex
    WebhookDelivery.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + timedelta(seconds=1)),
        pk__in=delivery_ids,
        state=DeliveryState.PENDING,
    ).update(lease_until=now + timedelta(seconds=conf.lease_seconds()), claim_token=token)
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
            return signing.signature_headers(secrets=secrets, msg_id=row.webhook_id, timestamp=int(time.time()),
                                             body=body)

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
        attempts.append(WebhookAttempt(
            delivery_id=row.pk, attempt=row.attempts, started_at=started_at, duration_ms=out.duration_ms,
            status_code=out.status_code, error_class=out.error_class or ("" if ok else f"HTTP {out.status_code}"),
            response_body=out.body, success=ok,
        ))
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
            if delay <= conf.max_countdown():
                countdowns[row.pk] = math.ceil(delay)
            report["retrying"] += 1

    with transaction.atomic():
        # A subscription deleted while we were sending takes its deliveries with it: record nothing for those.
        alive = set(WebhookDelivery.objects.filter(pk__in=[r.pk for r in rows]).values_list("pk", flat=True))
        rows = [r for r in rows if r.pk in alive]
        attempts = [a for a in attempts if a.delivery_id in alive]
        WebhookAttempt.objects.bulk_create(attempts)
        WebhookDelivery.objects.bulk_update(rows, [
            "attempts", "state", "delivered_at", "finished_at", "next_attempt_at", "last_status_code", "last_error",
            "lease_until", "claim_token",
        ])
        if succeeded_subs:
            WebhookSubscription.objects.filter(pk__in=succeeded_subs, consecutive_failures__gt=0).update(
                consecutive_failures=0)
        for sub_id in gone_subs:
            _disable(subscription_id=sub_id, reason="the endpoint answered 410 Gone")
        for sub_id in exhausted_subs:
            WebhookSubscription.objects.filter(pk=sub_id).update(consecutive_failures=F("consecutive_failures") + 1)
            failures = WebhookSubscription.objects.filter(pk=sub_id).values_list("consecutive_failures", flat=True)
            count = failures[0] if failures else 0
            if count >= conf.disable_after():
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


def retry_due(*, now=None, limit=5000):
    """Queue every pending delivery whose retry is due, and every first attempt whose worker died (its
    lease lapsed), in batches. Rows are claimed by stamping enqueued_at under SELECT ... FOR UPDATE SKIP
    LOCKED (PostgreSQL) / a conditional UPDATE (SQLite), so concurrent scans do not publish the same row
    twice within the grace period. Returns the number queued."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=conf.requeue_grace_seconds())
    retry_or_orphan = Q(attempts__gte=1, next_attempt_at__lte=now) | Q(attempts=0, lease_until__isnull=False)
    unleased = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    not_just_queued = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff)
    due = Q(state=DeliveryState.PENDING) & retry_or_orphan & unleased & not_just_queued
    with transaction.atomic():
        ids = list(WebhookDelivery.objects.select_for_update(skip_locked=True).filter(due)
                   .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
        if ids:
            WebhookDelivery.objects.filter(due, pk__in=ids).update(enqueued_at=now)
            ids = list(WebhookDelivery.objects.filter(pk__in=ids, enqueued_at=now).values_list("pk", flat=True))
    size = conf.batch_size()
    queued = 0
    for i in range(0, len(ids), size):
        if not publish_now_rollback_unsafe(DELIVER_TASK, args=[ids[i:i + size]]):
            WebhookDelivery.objects.filter(pk__in=ids[i:]).update(enqueued_at=None)
            break
        queued += len(ids[i:i + size])
    return queued


def cleanup_old_deliveries(*, now=None, batch=1000):
    """Delete delivered and failed deliveries (and their attempts) finished before the retention cutoff."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=conf.retention_days())
    old = WebhookDelivery.objects.filter(
        state__in=[DeliveryState.DELIVERED, DeliveryState.FAILED], finished_at__lt=cutoff
    )
    deleted = 0
    while True:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        with transaction.atomic():
            WebhookAttempt.objects.filter(delivery_id__in=ids).delete()
            WebhookDelivery.objects.filter(pk__in=ids).delete()
        deleted += len(ids)


class WebhookService:
    """The spec's service: trigger deliveries for an event, queue the retry scan."""

    trigger_webhook = staticmethod(trigger_webhook)
    retry_failed_deliveries = staticmethod(retry_failed_deliveries)
