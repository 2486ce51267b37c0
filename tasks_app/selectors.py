"""Reads. Every selector that takes a user returns only what that user may see."""

from datetime import UTC

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.utils import timezone as dj_timezone

from core.exceptions import NotFound
from tasks_app.models import Comment, Membership, Project, RecurrenceMode, RecurringTaskTemplate, Status, Task
from tasks_app.recurrence import Schedule

User = get_user_model()


def project_list(*, user, include_archived=True):
    qs = Project.objects.all()
    if not user.is_staff:
        qs = qs.filter(memberships__user=user)
    if not include_archived:
        qs = qs.filter(archived=False)
    my_role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    return qs.select_related("owner").annotate(my_role=Subquery(my_role)).order_by("name", "id")


def project_get(*, user, project_id):
    project = project_list(user=user).filter(pk=project_id).first()
    if project is None:
        raise NotFound("Project not found.", code="not_found")
    return project


def membership_list(*, project):
    return Membership.objects.filter(project=project).select_related("user").order_by("created_at", "id")


def membership_get(*, project, user_id):
    membership = membership_list(project=project).filter(user_id=user_id).first()
    if membership is None:
        raise NotFound("Member not found.", code="not_found")
    return membership


def visible_tasks(*, user):
    qs = Task.objects.all()
    if not user.is_staff:
        qs = qs.filter(project__memberships__user=user)
    return qs


class IdFilter(django_filters.NumberFilter):
    """An object id: a positive 64-bit integer, so an absurd value is a 400, not a database error."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=2**63 - 1, **kwargs)


class UTCIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return value
        try:  # PostgreSQL refuses offsets past ±15:59, which Python accepts
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("This date is out of range once converted to UTC.", code="invalid")


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


class TaskFilter(django_filters.FilterSet):
    project = IdFilter(field_name="project_id")
    status = django_filters.MultipleChoiceFilter(choices=Status.choices)
    assignee = IdFilter(field_name="assignee_id")
    due_before = UTCIsoDateTimeFilter(field_name="due_at", lookup_expr="lte")
    due_after = UTCIsoDateTimeFilter(field_name="due_at", lookup_expr="gte")
    search = django_filters.CharFilter(field_name="title", lookup_expr="icontains", max_length=200)

    class Meta:
        model = Task
        fields = ["project", "status", "assignee", "due_before", "due_after", "search"]


def task_list(*, user, filters=None):
    """Tasks the user can see, filtered like the task list endpoint (a dict or QueryDict of filters)."""
    qs = visible_tasks(user=user).select_related("project", "assignee", "created_by")
    if filters:
        fs = TaskFilter(filters, queryset=qs)
        if not fs.is_valid():
            from django.core.exceptions import ValidationError

            raise ValidationError(fs.errors)
        qs = fs.qs
    return qs


def task_get(*, user, task_id):
    task = visible_tasks(user=user).select_related("project", "assignee", "created_by").filter(pk=task_id).first()
    if task is None:
        raise NotFound("Task not found.", code="not_found")
    return task


def comment_list(*, task):
    return Comment.objects.filter(task=task).select_related("author").order_by("created_at", "id")


def comment_get(*, task, comment_id):
    comment = comment_list(task=task).filter(pk=comment_id).first()
    if comment is None:
        raise NotFound("Comment not found.", code="not_found")
    return comment


def project_member_ids(*, project, minimum_role=None):
    qs = Membership.objects.filter(project=project)
    if minimum_role:
        from tasks_app.models import ROLE_RANK

        qs = qs.filter(role__in=[r for r, rank in ROLE_RANK.items() if rank >= ROLE_RANK[minimum_role]])
    return set(qs.values_list("user_id", flat=True))


def users_by_usernames(*, usernames):
    if not usernames:
        return User.objects.none()
    q = Q()
    for name in usernames:
        q |= Q(username__iexact=name)
    return User.objects.filter(q)


class RecurringTemplateFilter(django_filters.FilterSet):
    project = IdFilter(field_name="project_id")
    enabled = django_filters.BooleanFilter()
    mode = django_filters.CharFilter()

    class Meta:
        model = RecurringTaskTemplate
        fields = ["project", "enabled", "mode"]


def recurring_template_list(*, user, filters=None):
    """Templates in projects the user can see, with their history count (cleaned + done instances)."""
    qs = RecurringTaskTemplate.objects.all()
    if not user.is_staff:
        qs = qs.filter(project__memberships__user=user)
    if filters:
        fs = RecurringTemplateFilter(filters, queryset=qs)
        if not fs.is_valid():
            from django.core.exceptions import ValidationError

            raise ValidationError(fs.errors)
        qs = fs.qs
    return (qs.select_related("project", "assignee", "created_by")
            .annotate(completed_instances=F("instances_cleaned") + Count(
                "instances", filter=Q(instances__status=Status.DONE)))
            .order_by("id"))


def recurring_template_get(*, user, template_id):
    template = recurring_template_list(user=user).filter(pk=template_id).first()
    if template is None:
        raise NotFound("Recurring task not found.", code="not_found")
    return template


def recurring_preview(*, template, count, now=None):
    """The next `count` occurrences at or after now as (utc, local) pairs.

    In after_completion mode only the next occurrence is known (later ones depend on completion).
    """
    schedule = Schedule.for_template(template)
    if template.mode == RecurrenceMode.AFTER_COMPLETION:
        occurrences = [template.next_occurrence_at] if template.next_occurrence_at else []
    else:
        occurrences = schedule.take(count, now or dj_timezone.now())
    return [(o, schedule.local(o)) for o in occurrences]


def reminder_list(*, task):
    from tasks_app.models import Reminder

    # Disarmed reminders (relative, task without a due date) last, on every database.
    return Reminder.objects.filter(task=task).select_related("recipient").order_by(
        F("fire_at").asc(nulls_last=True), "id")


def reminder_get(*, task, reminder_id):
    reminder = reminder_list(task=task).filter(pk=reminder_id).first()
    if reminder is None:
        raise NotFound("Reminder not found.", code="not_found")
    return reminder
