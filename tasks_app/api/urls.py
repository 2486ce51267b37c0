from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import SimpleRouter

from tasks_app.api import views
from tasks_app.api.reminders import ReminderViewSet

router = SimpleRouter()
router.register("projects", views.ProjectViewSet, basename="project")
router.register(r"projects/(?P<project_pk>\d+)/members", views.MembershipViewSet, basename="project-member")
router.register("tasks", views.TaskViewSet, basename="task")
router.register(r"tasks/(?P<task_pk>\d+)/comments", views.CommentViewSet, basename="task-comment")
router.register(r"tasks/(?P<task_pk>\d+)/reminders", ReminderViewSet, basename="task-reminder")
router.register("recurring-tasks", views.RecurringTaskViewSet, basename="recurring-task")

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="auth-token"),
    path("me/", views.MeView.as_view(), name="me"),
    *router.urls,
]
