"""Webhook writes: subscriptions, triggering deliveries, cleanup.

Attempting deliveries and the retry scan are in webhooks.delivery."""

import collections
import json
import logging
from datetime import timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from core.bulk import insert_many
from core.enqueue import enqueue_on_commit
from core.exceptions import ApplicationError, Conflict
from tasks_app.models import Role
from tasks_app.permissions import require_role
from webhooks import conf, signing
from webhooks.models import (
    PING_EVENT,
    DeliveryState,
    Event,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    new_webhook_id,
)
from webhooks.ssrf import UnsafeTarget, check_url

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.deliver_webhook"
RETRY_TASK = "webhooks.retry_failed_webhooks"


# --- subscriptions -----------------------------------------------------------
def _validate_url(url):
    try:
        check_url(url)
    except UnsafeTarget as exc:
        raise ApplicationError("The webhook URL is not allowed.", fields={"url": str(exc)}, code="unsafe_url") from None


def _validate_events(events):
    valid = set(Event.values)
    unknown = [e for e in events if e not in valid]
    if unknown or not events:
        raise ApplicationError(
            "Choose at least one known event.",
            fields={
                "events": f"Unknown events: {', '.join(map(str, unknown))}."
                if unknown
                else "Choose at least one event."
            },
        )
    return sorted(set(events))


def _require_manager(*, actor, project, check_permission=True):
    """check_permission=False: staff in Django admin, who need not be project members."""
    if check_permission:
        require_role(user=actor, project=project, minimum=Role.ADMIN, action="manage webhooks")


def subscription_validate(*, url=None, events=None):
    """The URL (shape and SSRF check, with DNS) and the events, as create and update check them; returns the
    normalized events. ApplicationError with field messages otherwise (Django admin's form uses it)."""
    if url is not None:
        _validate_url(url)
    return _validate_events(events) if events is not None else None


@transaction.atomic
def subscription_create(*, actor, project, url, events, description="", is_active=True, check_permission=True):
    """Returns (subscription, whsec_ secret shown once)."""
    _require_manager(actor=actor, project=project, check_permission=check_permission)
    _validate_url(url)
    secret = signing.generate_secret()
    sub = WebhookSubscription.objects.create(
        project=project,
        url=url,
        events=_validate_events(events),
        description=description,
        is_active=is_active,
        secret=secret,
        created_by=actor,
    )
    return sub, signing.display_secret(secret)


@transaction.atomic
def subscription_update(*, subscription, actor, data, check_permission=True):
    _require_manager(actor=actor, project=subscription.project, check_permission=check_permission)
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
def subscription_delete(*, subscription, actor, check_permission=True):
    _require_manager(actor=actor, project=subscription.project, check_permission=check_permission)
    subscription.delete()


@transaction.atomic
def subscription_rotate_secret(*, subscription, actor, grace_hours=None):
    """New secret now; the old one keeps signing (as a second v1 signature) for the grace period."""
    _require_manager(actor=actor, project=subscription.project)
    sub = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    grace = conf.WEBHOOK_SECRET_ROTATION_GRACE_HOURS if grace_hours is None else grace_hours
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
    size = conf.WEBHOOK_BATCH_SIZE
    for i in range(0, len(delivery_ids), size):
        enqueue_on_commit(DELIVER_TASK, args=[list(delivery_ids[i : i + size])])


@transaction.atomic
def trigger_webhook(*, project_id, event_type, data):
    """A delivery row per active subscription of the project that wants `event_type`, in the caller's
    transaction; deliver_webhook is queued (ids only, in batches) once it commits. Returns the ids."""
    return trigger_webhooks(event_type=event_type, events=[(project_id, data)])


def trigger_webhooks(*, event_type, events, project_ids=None):
    """trigger_webhook for many events of one type at once: `events` is [(project_id, data), ...].

    One subscription query and one bulk insert for the whole batch (e.g. a recurrence tick). `events` may
    be a callable that returns that list, given with `project_ids` (the projects it covers): it is called
    only if one of them has a subscription to this type, so that a batch nobody subscribed to builds no
    payload."""
    if project_ids is None:
        project_ids = {project_id for project_id, _ in events}
    subs_by_project = collections.defaultdict(list)
    for pk, project_id, wanted in WebhookSubscription.objects.filter(
        project_id__in=project_ids, is_active=True
    ).values_list("pk", "project_id", "events"):
        if event_type in (wanted or []):
            subs_by_project[project_id].append(pk)
    if not subs_by_project:
        return []
    if callable(events):
        events = events()
    now = timezone.now()
    sub_ids, bodies = [], []
    for project_id, data in events:
        subs = subs_by_project.get(project_id)
        if subs:
            body = encode_body({"type": event_type, "timestamp": now.isoformat(), "data": data})
            sub_ids += subs
            bodies += [body] * len(subs)
    # One INSERT ... SELECT FROM unnest() on PostgreSQL (core/bulk.py): no model instance per delivery.
    ids = insert_many(
        WebhookDelivery,
        common={"event_type": event_type, "created_at": now},
        varying={
            "subscription_id": sub_ids,
            "body": bodies,
            "webhook_id": [new_webhook_id() for _ in sub_ids],
        },
    )
    if None in ids:  # backends without RETURNING for bulk inserts
        ids = list(
            WebhookDelivery.objects.filter(
                created_at=now,
                event_type=event_type,
                subscription_id__in=[pk for subs in subs_by_project.values() for pk in subs],
            ).values_list("pk", flat=True)
        )
    _enqueue(ids)
    return ids


@transaction.atomic
def subscription_ping(*, subscription, actor):
    _require_manager(actor=actor, project=subscription.project)
    if not subscription.is_active:
        raise Conflict("The webhook is disabled; enable it before sending a ping.", code="inactive")
    now = timezone.now()
    body = encode_body(
        {
            "type": PING_EVENT,
            "timestamp": now.isoformat(),
            "data": {"subscription_id": subscription.pk, "project_id": subscription.project_id},
        }
    )
    delivery = WebhookDelivery.objects.create(subscription=subscription, event_type=PING_EVENT, body=body)
    _enqueue([delivery.pk])
    return delivery


@transaction.atomic
def delivery_redeliver(*, delivery, actor, check_permission=True):
    """A new delivery with the same body and the same webhook-id (receivers deduplicate on it)."""
    sub = delivery.subscription
    _require_manager(actor=actor, project=sub.project, check_permission=check_permission)
    if not sub.is_active:
        raise Conflict("The webhook is disabled; enable it before redelivering.", code="inactive")
    if delivery.state == DeliveryState.PENDING:
        raise Conflict("This delivery is still pending.", code="pending")
    copy = WebhookDelivery.objects.create(
        subscription=sub,
        event_type=delivery.event_type,
        webhook_id=delivery.webhook_id,
        body=delivery.body,
        redelivery_of=delivery,
    )
    _enqueue([copy.pk])
    return copy


def retry_failed_deliveries():
    """WebhookService.retry_failed_deliveries(): queue the retry scan."""
    enqueue_on_commit(RETRY_TASK)


def cleanup_old_deliveries(*, now=None, batch=1000):
    """Delete delivered and failed deliveries (and their attempts) finished before the retention cutoff."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=conf.WEBHOOK_DELIVERY_RETENTION_DAYS)
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
