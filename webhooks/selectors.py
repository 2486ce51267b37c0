"""Reads. Outsiders of a project get 404; members and viewers, who can see the project, get 403."""

from django.db.models import Exists, OuterRef

from core.exceptions import NotFound
from tasks_app.models import Membership, Role
from webhooks.models import WebhookDelivery, WebhookSubscription
from webhooks.services import _require_manager

MANAGER_ROLES = (Role.OWNER, Role.ADMIN)


def subscription_list(*, user, project_id=None):
    """Subscriptions of projects where the user is owner or admin (staff: all)."""
    qs = WebhookSubscription.objects.select_related("project")
    if not user.is_staff:
        qs = qs.filter(
            Exists(Membership.objects.filter(project=OuterRef("project"), user=user, role__in=MANAGER_ROLES))
        )
    if project_id is not None:
        qs = qs.filter(project_id=project_id)
    return qs.order_by("id")


def subscription_get(*, user, subscription_id):
    qs = WebhookSubscription.objects.select_related("project")
    if not user.is_staff:
        qs = qs.filter(Exists(Membership.objects.filter(project=OuterRef("project"), user=user)))
    sub = qs.filter(pk=subscription_id).first()
    if sub is None:
        raise NotFound("Webhook not found.", code="not_found")
    _require_manager(actor=user, project=sub.project)
    return sub


def delivery_list(*, subscription, state=None, event_type=None):
    qs = WebhookDelivery.objects.filter(subscription=subscription).defer("body")
    if state:
        qs = qs.filter(state=state)
    if event_type:
        qs = qs.filter(event_type=event_type)
    return qs.order_by("-created_at", "-id")


def delivery_get(*, subscription, delivery_id):
    delivery = (
        WebhookDelivery.objects.filter(subscription=subscription, pk=delivery_id)
        .select_related("subscription__project")
        .prefetch_related("attempt_log")
        .first()
    )
    if delivery is None:
        raise NotFound("Delivery not found.", code="not_found")
    return delivery
