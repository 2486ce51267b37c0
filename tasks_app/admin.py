from django import forms
from django.contrib import admin

from tasks_app.models import (
    Comment,
    Membership,
    Profile,
    Project,
    RecurringTaskTemplate,
    Reminder,
    SummaryDelivery,
    Task,
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


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "project", "status", "priority", "assignee", "due_at"]
    list_filter = ["status", "priority"]
    search_fields = ["title"]
    raw_id_fields = ["project", "assignee", "created_by", "recurring_template"]
    list_select_related = ["project", "assignee"]


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
        fields = "__all__"

    def clean(self):
        from tasks_app.recurrence import RecurrenceError, Schedule

        data = super().clean()
        try:
            Schedule(rrule=data.get("rrule"), dtstart=data.get("dtstart"), timezone=data.get("timezone"),
                     until=data.get("until"), count=data.get("count"))
        except RecurrenceError as exc:
            raise forms.ValidationError({exc.field: exc.message} if exc.field in self.fields else exc.message)
        return data


@admin.register(RecurringTaskTemplate)
class RecurringTaskTemplateAdmin(admin.ModelAdmin):
    """Admin edits follow the API's rules: the schedule is recomputed and changes reach instances."""

    form = RecurringTaskTemplateForm
    list_display = ["id", "title", "project", "rrule", "timezone", "mode", "enabled", "next_occurrence_at",
                    "instances_created"]
    list_filter = ["enabled", "mode", "catch_up"]
    search_fields = ["title"]
    raw_id_fields = ["project", "assignee", "created_by"]
    list_select_related = ["project"]
    readonly_fields = ["next_occurrence_at", "next_run_at", "last_occurrence_at", "last_generated_at",
                       "instances_created", "instances_cleaned", "apply_pending", "reschedule_pending", "version",
                       "created_at", "enqueued_at"]

    def save_model(self, request, obj, form, change):
        from tasks_app import services

        if change:
            services.recurring_template_changed(template=obj, changed=list(form.changed_data))
            return
        obj.created_by = obj.created_by or request.user
        services.recurring_template_schedule_from_now(template=obj)
        super().save_model(request, obj, form, change)


@admin.register(Reminder)
class ReminderAdmin(admin.ModelAdmin):
    """Inspect and delete. Timing and recipient change through the API, which validates them and keeps
    fire_at right; sent_at and the claim belong to the sweep."""

    list_display = ["id", "task", "recipient", "fire_at", "offset", "remind_at", "sent_at", "outcome"]
    list_filter = ["outcome"]
    raw_id_fields = ["task", "recipient", "created_by"]
    list_select_related = ["task", "recipient"]
    readonly_fields = ["task", "recipient", "follows_assignee", "created_by", "remind_at", "offset", "fire_at",
                       "claimed_at", "claim_token", "sent_at", "outcome", "created_at", "updated_at"]

    def has_add_permission(self, request):
        return False


@admin.register(SummaryDelivery)
class SummaryDeliveryAdmin(admin.ModelAdmin):
    """One row per user and period handled. Deleting a row lets that period's summary be sent again."""

    list_display = ["id", "user", "kind", "period_key", "outcome", "notification_id", "created_at"]
    list_filter = ["kind", "outcome"]
    search_fields = ["period_key"]
    raw_id_fields = ["user"]
    readonly_fields = ["user", "kind", "period_key", "outcome", "notification_id", "created_at"]

    def has_add_permission(self, request):
        return False
