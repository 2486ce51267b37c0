from django.urls import path

from core.routers import Router
from tasks_app.api import domain_views, views
from tasks_app.api.changes import ChangesView, change_stream

router = Router()
router.register("projects", views.ProjectViewSet, basename="project")
router.register(r"projects/(?P<project_pk>\d+)/members", views.MembershipViewSet, basename="project-member")
router.register(r"projects/(?P<project_pk>\d+)/labels", domain_views.LabelViewSet, basename="project-label")
router.register("tasks", views.TaskViewSet, basename="task")
router.register(r"tasks/(?P<task_pk>\d+)/relations", domain_views.RelationViewSet, basename="task-relation")
router.register(r"tasks/(?P<task_pk>\d+)/comments", views.CommentViewSet, basename="task-comment")
router.register(r"tasks/(?P<task_pk>\d+)/activity", views.TaskActivityViewSet, basename="task-activity")
router.register("recurring-tasks", views.RecurringTaskViewSet, basename="recurring-task")

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("changes/", ChangesView.as_view(), name="changes"),
    path("changes/stream/", change_stream, name="changes-stream"),
    *router.urls,
]
