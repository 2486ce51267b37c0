from django.urls import path

from analytics.api import views
from core.routers import Router

router = Router()
router.register("exports", views.ExportViewSet, basename="export")

urlpatterns = [
    path("analytics/me/", views.MyAnalyticsView.as_view(), name="analytics-me"),
    path("analytics/projects/<int:project_id>/", views.ProjectAnalyticsView.as_view(), name="analytics-project"),
    *router.urls,
]
