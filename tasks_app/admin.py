from django.contrib import admin

from tasks_app.models import Comment, Membership, Profile, Project, RecurringTaskTemplate, Task


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


@admin.register(RecurringTaskTemplate)
class RecurringTaskTemplateAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "project", "rrule", "timezone", "mode", "enabled", "next_occurrence_at",
                    "instances_created"]
    list_filter = ["enabled", "mode", "catch_up"]
    search_fields = ["title"]
    raw_id_fields = ["project", "assignee", "created_by"]
    list_select_related = ["project"]
    readonly_fields = ["next_occurrence_at", "next_run_at", "last_occurrence_at", "last_generated_at",
                       "instances_created", "instances_cleaned", "apply_pending", "reschedule_pending", "version"]
