from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from core.outbox import OutboxRow
from tasks_app.validators import validate_timezone


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    morning_hour = models.PositiveSmallIntegerField(
        default=8, validators=[MaxValueValidator(23)], help_text="Local hour for the daily summary."
    )

    class Meta:
        # The hourly summary runs look users up by (timezone, local morning hour).
        indexes = [models.Index(fields=["timezone", "morning_hour"], name="profile_local_morning")]

    def __str__(self):
        return f"profile of {self.user}"


class Role(models.TextChoices):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


ROLE_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_projects")
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="uniq_membership")]

    def __str__(self):
        return f"{self.user} in {self.project} ({self.role})"


class Status(models.TextChoices):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


CLOSED_STATUSES = (Status.DONE, Status.CANCELLED)


class Priority(models.IntegerChoices):
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    URGENT = 4


class Task(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TODO)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.MEDIUM)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tasks"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="created_tasks"
    )
    due_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Bumped on every change, so webhook receivers can drop out-of-order events.
    version = models.PositiveIntegerField(default=1)
    # Recurring instances: the template (kept null when the template is deleted, so history stays),
    # the occurrence (UTC) this instance stands for, and the fields a user changed on it, which
    # template updates then leave alone.
    recurring_template = models.ForeignKey(
        "RecurringTaskTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="instances"
    )
    occurrence_at = models.DateTimeField(null=True, blank=True)
    edited_fields = models.JSONField(default=list, blank=True)
    # Subtasks: same project, at most MAX_SUBTASK_DEPTH levels, no cycles (services/subtasks.py).
    # Deleting a parent deletes its subtree through task_delete (each with its own event); the
    # database cascade is only the backstop for project deletion.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="subtasks")
    labels = models.ManyToManyField("Label", through="TaskLabel", related_name="tasks", blank=True)
    # Board order within (project, status): a lexicographic rank of [0-9a-z] (services/positions.py).
    position = models.CharField(max_length=128, default="", db_default="", blank=True)
    # PostgreSQL full-text document (title, description, comments), kept by services/search.py;
    # unused (null) on SQLite.
    search_vector = SearchVectorField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recurring_template", "occurrence_at"], name="uniq_recurring_occurrence"),
        ]
        indexes = [
            models.Index(fields=["project", "status", "position"], name="task_board_position"),
            models.Index(fields=["parent"], name="task_parent"),
            models.Index(fields=["created_by"], name="task_created_by"),
            models.Index(fields=["project", "status"]),
            models.Index(fields=["assignee", "status"]),
            models.Index(fields=["due_at"]),
            models.Index(fields=["completed_at"]),
            # The list's default order (-created_at, -id): a page is read from the index, not by sorting every row.
            models.Index(fields=["created_at", "id"], name="task_created_at_id"),
        ]

    def __str__(self):
        return self.title


MAX_SUBTASK_DEPTH = 5  # a root task and four levels of subtasks below it


class Label(models.Model):
    """A project's label; the name is unique in the project regardless of case."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=50)
    color = models.CharField(max_length=7, default="#808080", help_text="#rrggbb")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(Lower("name"), "project", name="uniq_label_name_ci")]

    def __str__(self):
        return self.name


class TaskLabel(models.Model):  # noqa: DJ008 (a link row)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="task_labels")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="task_labels")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "label"], name="uniq_task_label")]
        indexes = [models.Index(fields=["label", "task"], name="tasklabel_label_task")]


class RelationType(models.TextChoices):
    BLOCKS = "blocks"  # source blocks target (read from the target: blocked_by)
    DUPLICATES = "duplicates"  # source duplicates target
    RELATES_TO = "relates_to"  # symmetric; stored once with source id < target id


class TaskRelation(models.Model):
    """One row per relation; `blocks` reads as `blocked_by` from its target."""

    source = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="relations_out")
    target = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="relations_in")
    type = models.CharField(max_length=16, choices=RelationType.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "target", "type"], name="uniq_task_relation"),
            models.CheckConstraint(condition=~models.Q(source=models.F("target")), name="relation_not_self"),
        ]
        indexes = [models.Index(fields=["target", "type"], name="relation_target_type")]

    def __str__(self):
        return f"{self.source_id} {self.type} {self.target_id}"


class Comment(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="comments")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"comment {self.pk} on task {self.task_id}"


class RecurrenceMode(models.TextChoices):
    SCHEDULE = "schedule"
    AFTER_COMPLETION = "after_completion"


class CatchUp(models.TextChoices):
    ALL = "all"
    LATEST = "latest"


class RecurringTaskTemplate(OutboxRow):
    """A task that repeats on an RFC 5545 RRULE; each occurrence becomes a normal Task (an instance).

    `next_run_at` (= next_occurrence_at - lead_time) is when the next instance is due to be created;
    null when there is none (rule exhausted, after_completion waiting for the open instance, or a
    schedule change still being applied). `apply_pending` marks template changes not yet applied to
    future instances (`reschedule_pending`: the schedule changed too); the outbox sweep re-publishes
    those (created_at/enqueued_at come from OutboxRow).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="recurring_templates")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.MEDIUM)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_recurring_templates",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="created_recurring_templates",
    )
    rrule = models.CharField(max_length=500, help_text="RFC 5545 RRULE value, e.g. FREQ=WEEKLY;BYDAY=MO,WE")
    dtstart = models.DateTimeField(help_text="First occurrence; its wall-clock time in `timezone` is kept.")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    until = models.DateTimeField(null=True, blank=True)
    count = models.PositiveIntegerField(null=True, blank=True)
    mode = models.CharField(max_length=16, choices=RecurrenceMode.choices, default=RecurrenceMode.SCHEDULE)
    lead_time = models.DurationField(default=timedelta(0), help_text="Create each instance this long before it is due.")
    catch_up = models.CharField(max_length=8, choices=CatchUp.choices, default=CatchUp.ALL)
    enabled = models.BooleanField(default=True)

    next_occurrence_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_occurrence_at = models.DateTimeField(null=True, blank=True)
    last_generated_at = models.DateTimeField(null=True, blank=True)
    instances_created = models.PositiveIntegerField(default=0)
    instances_cleaned = models.PositiveIntegerField(
        default=0, help_text="Completed instances removed by the retention cleanup (still part of the history)."
    )
    apply_pending = models.BooleanField(default=False)
    reschedule_pending = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["enabled", "next_run_at"])]

    def __str__(self):
        return self.title


class CurrentTransactionId(models.Func):
    """The database default of Event.txid: PostgreSQL's top-level transaction id (xid8, as a bigint; the same
    inside savepoints); 0 elsewhere (SQLite runs one write transaction at a time, so id order is commit order)."""

    template = "0"
    output_field = models.BigIntegerField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return "(pg_current_xact_id()::text::bigint)", []


class Event(models.Model):
    """The append-only log of every change in the tasks domain: one row per change.

    What readers (the activity endpoint, the change feed, webhooks) can rely on:
    - Rows are only inserted, in the same transaction as the change they describe, by
      `tasks_app.services.events.event_record` / `event_record_many`, and by the recurring engine's batch
      statement on PostgreSQL (`tasks_app.recurring.engine._batch_sql`: the task.created events of the instances
      it inserts, the same type, data and order; tested against event_record_many's); never updated.
    - `id` is a bigint that grows with insertion order, so `ORDER BY id` is the order changes were
      recorded in a single database (two concurrent transactions may commit out of id order: a reader
      polling "id > last_seen" should re-read a short window, or wait for older transactions to end).
    - `project_id` is always set; `task_id` is set for task-level events and is a plain integer, not a
      foreign key, so the `task.deleted` event outlives its task. `actor_id` is null for system changes
      (recurring engine, retention) and when the user is deleted.
    - `type` is one of EVENT_TYPES below; `data` is JSON. Updates carry `data["changes"] = {field: [old, new]}`
      with JSON-ready values (ISO 8601 datetimes, ids for users and tasks), computed once by the service.
    - Visibility = project membership: whoever may read the project may read its events (staff read all).
    - Deleting a project deletes its events (they cascade). Rows older than EVENT_RETENTION_DAYS are
      removed by `tasks.cleanup_old_events` (daily); nothing in the code depends on old rows.
    """

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    task_id = models.BigIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    type = models.CharField(max_length=40)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The writing transaction's id (PostgreSQL; 0 on SQLite), set by the database: the change feed reads in
    # (txid, id) order, and only transactions older than every running one (tasks_app/changefeed.py).
    txid = models.BigIntegerField(db_default=CurrentTransactionId(), editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["txid", "id"], name="event_txid_id"),
            models.Index(fields=["task_id", "id"], name="event_task_id"),
            models.Index(fields=["project", "id"], name="event_project_id"),
            models.Index(fields=["created_at"], name="event_created_at"),
        ]

    def __str__(self):
        return f"{self.type} #{self.pk}"


EVENT_TYPES = (
    "task.created",
    "task.updated",  # changes: {field: [old, new]}, incl. status/assignee/completed_at/parent/position
    "task.deleted",
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "project.created",
    "project.updated",
    "member.added",
    "member.updated",
    "member.removed",
    "label.created",
    "label.updated",
    "label.deleted",
    "label.added",  # to a task
    "label.removed",  # from a task
    "relation.added",
    "relation.removed",
    "subtask.added",  # on the parent: data {"subtask": id}
    "subtask.removed",
)
