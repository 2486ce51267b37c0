from django import forms
from django.contrib import admin

from core.exceptions import ApplicationError
from tasks_app.models import (
    Comment,
    Event,
    Label,
    Membership,
    Profile,
    Project,
    RecurringTaskTemplate,
    Status,
    Task,
    TaskRelation,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "archived", "created_at"]
    list_filter = ["archived"]
    search_fields = ["name"]
    raw_id_fields = ["owner"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role"]
    list_filter = ["role"]
    raw_id_fields = ["project", "user"]


class TaskAdminForm(forms.ModelForm):
    """The API's rules, checked here so that a refusal is a form error (not a 500): a member as the
    assignee; a parent in the same project, not below the task itself, within the depth limit; labels
    of the task's project only; no `done` while subtasks are open. The services check again under
    the task's row lock when saving."""

    labels = forms.ModelMultipleChoiceField(
        queryset=Label.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Labels of the task's project (set through the same service as the API; one event per change).",
    )

    class Meta:
        model = Task
        fields = ["project", "title", "description", "status", "priority", "assignee", "due_at", "parent"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "labels" in self.fields:
            if self.instance.pk is not None:
                self.fields["labels"].queryset = Label.objects.filter(project_id=self.instance.project_id)
                if "labels" not in self.initial:  # the admin's form class lists it among the model's fields
                    self.initial["labels"] = list(self.instance.labels.values_list("pk", flat=True))
            else:  # the project is chosen on this very form: labels are set on the change page
                del self.fields["labels"]

    def clean(self):
        from tasks_app.permissions import validate_assignee
        from tasks_app.services.subtasks import (
            refuse_done_with_open_subtasks,
            validate_parent,
            validate_parent_for_create,
        )

        data = super().clean()
        project = data.get("project") or getattr(self.instance, "project", None)
        editing = self.instance.pk is not None
        try:
            if project is not None and data.get("assignee") is not None:
                validate_assignee(project=project, assignee=data["assignee"])
            if "parent" in self.changed_data:
                if editing:
                    validate_parent(task=self.instance, parent=data.get("parent"))
                elif project is not None:
                    validate_parent_for_create(project=project, parent=data.get("parent"))
            if editing and "status" in self.changed_data and data.get("status") == Status.DONE:
                refuse_done_with_open_subtasks(task=self.instance)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.fields or exc.message) from None
        return data


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    """Writes go through tasks_app.services like the API's: a change bumps the version and sends the
    task's events (webhooks, notifications) and moves its reminders; staff need not be project members.
    `parent` and `labels` are editable (task_update, as the API's PATCH: event rows, subtask and label
    events); labels on the change page only, since they depend on the project."""

    form = TaskAdminForm
    list_display = ["id", "title", "project", "status", "priority", "assignee", "due_at", "version"]
    list_filter = ["status", "priority"]
    search_fields = ["title"]
    raw_id_fields = ["project", "assignee", "parent"]
    list_select_related = ["project", "assignee"]
    readonly_fields = [
        "version",
        "position",
        "completed_at",
        "created_by",
        "recurring_template",
        "occurrence_at",
        "edited_fields",
        "created_at",
        "updated_at",
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return ["project", *fields] if obj is not None else fields  # a task does not move between projects

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return fields if obj is not None else [f for f in fields if f != "labels"]

    def save_model(self, request, obj, form, change):
        from tasks_app.services import tasks as services

        if change:
            data = {f: form.cleaned_data[f] for f in services.TASK_EDITABLE_FIELDS if f in form.changed_data}
            if "labels" in form.changed_data:  # replaces the set, like the API's PATCH `labels`
                data["labels"] = [label.pk for label in form.cleaned_data["labels"]]
            saved = services.task_update(task=obj, actor=request.user, data=data, check_permission=False)
        else:
            fields = {f: form.cleaned_data[f] for f in services.TASK_EDITABLE_FIELDS if f in form.cleaned_data}
            saved = services.task_create(
                actor=request.user, project=form.cleaned_data["project"], check_permission=False, **fields
            )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        """Not form.save_m2m(): it would set `labels` directly; save_model sent them through the service."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        from tasks_app.services import tasks as services

        services.task_delete(task=obj, actor=request.user, check_permission=False)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("project"):
            self.delete_model(request, obj)


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "author", "created_at"]
    raw_id_fields = ["task", "author"]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "timezone", "morning_hour"]
    raw_id_fields = ["user"]


class RecurringTaskTemplateForm(forms.ModelForm):
    class Meta:
        model = RecurringTaskTemplate
        fields = "__all__"  # noqa: DJ007 -- the admin edits every field; clean() validates the rule

    def clean(self):
        from tasks_app.recurring.rules import RecurrenceError, Schedule

        data = super().clean()
        try:
            Schedule(
                rrule=data.get("rrule"),
                dtstart=data.get("dtstart"),
                timezone=data.get("timezone"),
                until=data.get("until"),
                count=data.get("count"),
            ).check_repeats()
        except RecurrenceError as exc:
            raise forms.ValidationError({exc.field: exc.message} if exc.field in self.fields else exc.message)
        return data


@admin.register(RecurringTaskTemplate)
class RecurringTaskTemplateAdmin(admin.ModelAdmin):
    """Admin edits follow the API's rules: the schedule is recomputed and changes reach instances."""

    form = RecurringTaskTemplateForm
    list_display = [
        "id",
        "title",
        "project",
        "rrule",
        "timezone",
        "mode",
        "enabled",
        "next_occurrence_at",
        "instances_created",
    ]
    list_filter = ["enabled", "mode", "catch_up"]
    search_fields = ["title"]
    raw_id_fields = ["project", "assignee", "created_by"]
    list_select_related = ["project"]
    readonly_fields = [
        "next_occurrence_at",
        "next_run_at",
        "last_occurrence_at",
        "last_generated_at",
        "instances_created",
        "instances_cleaned",
        "apply_pending",
        "reschedule_pending",
        "version",
        "created_at",
        "enqueued_at",
    ]

    def save_model(self, request, obj, form, change):
        from tasks_app.recurring.templates import recurring_template_changed, recurring_template_schedule_from_now

        if change:
            recurring_template_changed(template=obj, changed=list(form.changed_data))
            return
        obj.created_by = obj.created_by or request.user
        recurring_template_schedule_from_now(template=obj)
        super().save_model(request, obj, form, change)


class LabelForm(forms.ModelForm):
    class Meta:
        model = Label
        fields = ["project", "name", "color"]

    def clean(self):
        from tasks_app.services.labels import _name_clash

        data = super().clean()
        if data.get("project") and data.get("name"):
            try:
                _name_clash(project=data["project"], name=data["name"].strip(), exclude_id=self.instance.pk)
            except ApplicationError as exc:
                raise forms.ValidationError({"name": exc.message})
        return data


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    """Writes go through the label services (events, webhooks); the staff user is the actor."""

    form = LabelForm
    list_display = ["id", "name", "color", "project", "created_at"]
    search_fields = ["name"]
    raw_id_fields = ["project"]
    list_select_related = ["project"]

    def get_readonly_fields(self, request, obj=None):
        return ["project"] if obj else []

    def save_model(self, request, obj, form, change):
        from tasks_app.services.labels import label_create, label_update

        if change:
            label_update(label=Label.objects.get(pk=obj.pk), actor=request.user, data=form.cleaned_data)
        else:
            obj.pk = label_create(project=obj.project, actor=request.user, name=obj.name, color=obj.color).pk

    def delete_model(self, request, obj):
        from tasks_app.services.labels import label_delete

        label_delete(label=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for label in queryset.select_related("project"):
            self.delete_model(request, label)


class TaskRelationForm(forms.ModelForm):
    class Meta:
        model = TaskRelation
        fields = ["source", "type", "target"]

    def clean(self):
        from tasks_app.services.relations import relation_check

        data = super().clean()
        if data.get("source") and data.get("target") and data.get("type"):
            try:
                relation_check(task=data["source"], other=data["target"], type=data["type"])
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message)
        return data


@admin.register(TaskRelation)
class TaskRelationAdmin(admin.ModelAdmin):
    """Relations are added or removed (through the services), never edited in place."""

    form = TaskRelationForm

    list_display = ["id", "source", "type", "target", "created_by", "created_at"]
    list_filter = ["type"]
    raw_id_fields = ["source", "target", "created_by"]
    fields = ["source", "type", "target"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        from tasks_app.services.relations import relation_add

        obj.pk = relation_add(task=obj.source, actor=request.user, other=obj.target, type=obj.type).pk

    def delete_model(self, request, obj):
        from tasks_app.services.relations import relation_remove

        relation_remove(relation=obj, actor=request.user, task=obj.source)

    def delete_queryset(self, request, queryset):
        for relation in queryset.select_related("source__project", "target"):
            self.delete_model(request, relation)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The event log is append-only: read it here, never write it."""

    list_display = ["id", "type", "project", "task_id", "actor", "created_at"]
    list_filter = ["type"]
    search_fields = ["=task_id"]
    raw_id_fields = ["project", "actor"]
    list_select_related = ["project", "actor"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
