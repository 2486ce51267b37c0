from django.urls import path
from rest_framework.routers import SimpleRouter

from analytics.api import views

router = SimpleRouter()
router.register("exports", views.ExportViewSet, basename="export")

urlpatterns = [
    path("analytics/me/", views.MyAnalyticsView.as_view(), name="analytics-me"),
    path("analytics/projects/<int:project_id>/", views.ProjectAnalyticsView.as_view(), name="analytics-project"),
    *router.urls,
]
