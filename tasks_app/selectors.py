"""Reads. Every selector that takes a user returns only what that user may see."""

import functools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone as dj_timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field

from core.exceptions import NotFound
from core.filters import StrictBooleanFilter
from tasks_app.models import (
    CLOSED_STATUSES,
    Comment,
    Event,
    Label,
    Membership,
    Priority,
    Project,
    RecurrenceMode,
    RecurringTaskTemplate,
    Status,
    Task,
    TaskLabel,
    TaskRelation,
)
from tasks_app.recurring.rules import Schedule

User = get_user_model()


def _count(qs, group_field):
    """A correlated COUNT(*) subquery (0 when there are no rows): one column, no join, no GROUP BY outside."""
    counted = qs.order_by().values(group_field).annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def project_list(*, user, include_archived=True):
    qs = Project.objects.all()
    if not user.is_staff:
        qs = qs.filter(memberships__user=user)
    if not include_archived:
        qs = qs.filter(archived=False)
    my_role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    counts = {
        f"tasks_{status}": _count(Task.objects.filter(project=OuterRef("pk"), status=status), "project")
        for status in Status.values
    }
    return (
        qs.select_related("owner")
        .annotate(
            my_role=Subquery(my_role),
            member_count=_count(Membership.objects.filter(project=OuterRef("pk")), "project"),
            **counts,
        )
        .order_by("name", "id")
    )


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


def visible_tasks(*, user, queryset=None):
    """Tasks `user` may see: `queryset` (default: every task) narrowed to the user's projects unless staff."""
    qs = Task.objects.all() if queryset is None else queryset.all()
    if not user.is_staff:
        # project_id IN (the user's projects): no join to plan (half the planning time of the join through
        # projects and memberships on PostgreSQL), and no duplicate rows whatever the memberships hold.
        qs = qs.filter(project_id__in=Membership.objects.filter(user=user).values("project_id"))
    return qs


def with_task_counts(qs):
    """The task body's computed fields, each a correlated subquery in the same SELECT (no extra query)."""
    return qs.annotate(**_task_count_annotations())


def _task_count_annotations():
    open_blocker = TaskRelation.objects.filter(type="blocks", target=OuterRef("pk")).exclude(
        source__status__in=CLOSED_STATUSES
    )
    return {
        "subtask_count": _count(Task.objects.filter(parent=OuterRef("pk")), "parent"),
        "subtasks_done": _count(Task.objects.filter(parent=OuterRef("pk"), status=Status.DONE), "parent"),
        "comment_count": _count(Comment.objects.filter(task=OuterRef("pk")), "task"),
        "is_blocked": Exists(open_blocker),
    }


@functools.cache
def _annotated_tasks():
    """Task.objects with the computed fields, built once per process: resolving the four correlated subqueries is
    most of the Python cost of building a task list's queryset (about 3 ms a request), and they never change.
    Never evaluated itself; every caller chains on a clone."""
    return Task.objects.annotate(**_task_count_annotations())


def visible_tasks_with_counts(*, user):
    """visible_tasks() with the computed fields (the same SQL as with_task_counts(visible_tasks(user=user)))."""
    return visible_tasks(user=user, queryset=_annotated_tasks())


def task_labels_by_task(*, task_ids):
    """{task id: [{id, name, color}, ...]} for a page of tasks, in one query (labels by name)."""
    out = {}
    rows = (
        TaskLabel.objects.filter(task_id__in=list(task_ids))
        .order_by("label__name", "label_id")
        .values_list("task_id", "label_id", "label__name", "label__color")
    )
    for task_id, label_id, name, color in rows:
        out.setdefault(task_id, []).append({"id": label_id, "name": name, "color": color})
    return out


def label_list(*, project):
    return Label.objects.filter(project=project).order_by("name", "id")


def label_get(*, project, label_id):
    label = label_list(project=project).filter(pk=label_id).select_related("project").first()
    if label is None:
        raise NotFound("Label not found.", code="not_found")
    return label


def relation_list(*, user, task):
    """The task's relations whose other end the user can see, each as (relation, direction, other task id)."""
    visible = visible_tasks(user=user).values("pk")
    qs = (
        TaskRelation.objects.filter(Q(source=task, target__in=visible) | Q(target=task, source__in=visible))
        .select_related("source", "target")
        .order_by("id")
    )
    return qs


def relation_get(*, user, task, relation_id):
    relation = relation_list(user=user, task=task).filter(pk=relation_id).first()
    if relation is None:
        raise NotFound("Relation not found.", code="not_found")
    return relation


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": 2**63 - 1})
class IdFilter(django_filters.NumberFilter):
    """An object id: a positive 64-bit integer, so an absurd value is a 400, not a database error."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=2**63 - 1, **kwargs)


class UTCIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 datetime with an explicit offset (a naive one is ambiguous: 400, as in request bodies)."""

    def to_python(self, value):
        if value == "":  # given but empty: the schema's date-time says no; omit the filter instead
            raise forms.ValidationError("A datetime with an offset, or leave the filter out.", code="invalid")
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None  # not a datetime: super() says so
            if parsed is not None and dj_timezone.is_naive(parsed):
                raise forms.ValidationError(
                    "Include a timezone offset, e.g. 2026-05-01T09:00:00+02:00 or ...Z.", code="naive"
                )
        value = super().to_python(value)
        if value is None:
            return value
        try:  # PostgreSQL refuses offsets past ±15:59, which Python accepts
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("This date is out of range once converted to UTC.", code="invalid")


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


class MultipleIdField(forms.Field):
    """A repeatable id parameter (?label=1&label=2): up to 20 positive 64-bit integers."""

    widget = forms.SelectMultiple

    def to_python(self, value):
        if not value:
            return []
        if isinstance(value, (str, int)):
            value = [value]
        if len(value) > 20:
            raise forms.ValidationError("At most 20 values.", code="invalid")
        try:
            ids = [int(v) for v in value]
        except (TypeError, ValueError):
            raise forms.ValidationError("Each value must be an integer id.", code="invalid")
        if any(not 1 <= i < 2**63 for i in ids):
            raise forms.ValidationError("Ids are positive 64-bit integers.", code="invalid")
        return ids


@extend_schema_field(
    {"type": "array", "maxItems": 20, "items": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}}
)
class MultipleIdFilter(django_filters.Filter):
    field_class = MultipleIdField


class TaskFilter(django_filters.FilterSet):
    project = IdFilter(field_name="project_id")
    status = django_filters.MultipleChoiceFilter(choices=Status.choices)
    priority = django_filters.TypedMultipleChoiceFilter(choices=Priority.choices, coerce=int)
    assignee = IdFilter(field_name="assignee_id")
    created_by = IdFilter(field_name="created_by_id")
    due_before = UTCIsoDateTimeFilter(field_name="due_at", lookup_expr="lte")
    due_after = UTCIsoDateTimeFilter(field_name="due_at", lookup_expr="gte")
    overdue = StrictBooleanFilter(method="filter_overdue", help_text="Open tasks due before now.")
    due_today = StrictBooleanFilter(
        method="filter_due_today", help_text="Due today in the requesting user's timezone (profile)."
    )
    label = MultipleIdFilter(method="filter_label", help_text="Repeatable label id; any of them (label_mode=all: all).")
    label_mode = django_filters.ChoiceFilter(
        choices=[("any", "any"), ("all", "all")], method="filter_noop", help_text="How `label` combines (default any)."
    )
    no_label = StrictBooleanFilter(method="filter_no_label")
    parent = IdFilter(field_name="parent_id")
    is_root = StrictBooleanFilter(field_name="parent", lookup_expr="isnull")
    is_blocked = StrictBooleanFilter(field_name="is_blocked", help_text="Has an open blocker.")
    search = django_filters.CharFilter(
        method="filter_search", max_length=200, help_text="Words in the title, description or comments (prefixes)."
    )

    class Meta:
        model = Task
        fields = []

    def filter_noop(self, queryset, name, value):
        return queryset

    def filter_overdue(self, queryset, name, value):
        overdue = Q(due_at__lt=dj_timezone.now()) & ~Q(status__in=CLOSED_STATUSES)
        return queryset.filter(overdue) if value else queryset.exclude(overdue)

    def filter_due_today(self, queryset, name, value):
        user = getattr(self.request, "user", None)
        zone = getattr(getattr(user, "profile", None), "timezone", None) or "UTC"
        tz = ZoneInfo(zone)
        today = dj_timezone.now().astimezone(tz).date()
        start = datetime.combine(today, time.min, tzinfo=tz)
        end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=tz)
        today_q = Q(due_at__gte=start, due_at__lt=end)
        return queryset.filter(today_q) if value else queryset.exclude(today_q)

    def filter_label(self, queryset, name, value):
        if not value:
            return queryset
        if self.form.cleaned_data.get("label_mode") == "all":
            for label_id in set(value):
                queryset = queryset.filter(Exists(TaskLabel.objects.filter(task=OuterRef("pk"), label_id=label_id)))
            return queryset
        return queryset.filter(Exists(TaskLabel.objects.filter(task=OuterRef("pk"), label_id__in=value)))

    def filter_no_label(self, queryset, name, value):
        has_label = Exists(TaskLabel.objects.filter(task=OuterRef("pk")))
        return queryset.filter(~has_label) if value else queryset.filter(has_label)

    def filter_search(self, queryset, name, value):
        from tasks_app.services.search import search_tsquery, search_tsquery_is_empty, search_words, uses_postgres

        words = search_words(value)
        if not words:
            return queryset
        if uses_postgres() and not search_tsquery_is_empty(words):
            from django.contrib.postgres.search import SearchQuery, SearchRank

            from tasks_app import conf

            query = SearchQuery(search_tsquery(words), search_type="raw", config=conf.TASK_SEARCH_LANGUAGE)
            return queryset.filter(search_vector=query).annotate(search_rank=SearchRank(F("search_vector"), query))
        # SQLite, and PostgreSQL when the words are all stop words (`the`, `a an`): substring match.
        for word in words:
            in_comments = Exists(Comment.objects.filter(task=OuterRef("pk"), body__icontains=word))
            queryset = queryset.filter(Q(title__icontains=word) | Q(description__icontains=word) | in_comments)
        return queryset


def task_list(*, user, filters=None, request=None):
    """Tasks the user can see, filtered like the task list endpoint (a dict or QueryDict of filters)."""
    qs = visible_tasks_with_counts(user=user).select_related("project", "assignee", "created_by")
    if filters:
        if request is None:  # e.g. an export job: due_today still means the user's own day
            from types import SimpleNamespace

            request = SimpleNamespace(user=user)
        fs = TaskFilter(filters, queryset=qs, request=request)
        if not fs.is_valid():
            from django.core.exceptions import ValidationError

            raise ValidationError(fs.errors)
        qs = fs.qs
    return qs


def task_get(*, user, task_id):
    task = (
        visible_tasks_with_counts(user=user)
        .select_related("project", "assignee", "created_by")
        .filter(pk=task_id)
        .first()
    )
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


def latest_visible_event_id(*, user):
    """A one-row queryset: the newest event id of the projects `user` can see (for list ETags).

    For a member it is taken per membership: each project's newest event is one step down the (project, id)
    index, and the largest of those wins. The plain form (`project_id IN (my projects) ORDER BY id DESC LIMIT 1`)
    lets PostgreSQL walk the primary key backwards over every newer event of every other project, which on a busy
    instance costs each poll of a quiet user's list a scan of the whole recent log."""
    if user.is_staff:
        return Event.objects.order_by("-id").values("id")[:1]
    # `project_id >= p AND project_id <= p` rather than `= p`, and ordered by (project, id): with an equality the
    # planner drops the project from the ordering, and may then walk the primary key backwards filtering on the
    # project (it does when the visibility map is not set, since the index's heap visits look dearer). The range
    # keeps the ordering that only the (project, id) index gives, so that index is read: one entry per project.
    project = OuterRef("project_id")
    newest = (
        Event.objects.filter(project_id__gte=project, project_id__lte=project)
        .order_by("-project_id", "-id")
        .values("id")[:1]
    )
    return (
        Membership.objects.filter(user=user)
        .annotate(last_event=Subquery(newest))
        .order_by(F("last_event").desc(nulls_last=True))
        .values("last_event")[:1]
    )


def task_activity(*, task):
    """The task's events, newest first (the caller has already checked the task is visible)."""
    return Event.objects.filter(task_id=task.pk).select_related("actor").order_by("-id")


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
    # true or false, nothing else (BooleanFilter reads any other value as "no filter")
    enabled = django_filters.TypedChoiceFilter(
        choices=[("true", "true"), ("false", "false")], coerce=lambda v: v == "true"
    )
    mode = django_filters.ChoiceFilter(choices=RecurrenceMode.choices)

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
    return (
        qs.select_related("project", "assignee", "created_by")
        .annotate(
            completed_instances=F("instances_cleaned") + Count("instances", filter=Q(instances__status=Status.DONE))
        )
        .order_by("id")
    )


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
