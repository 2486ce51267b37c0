from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import health
from core.api import ApiRootView
from notifications import views as notification_pages
from ops import views as ops_views
from tasks_app.pages import task_page

api_v1 = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("", include("accounts.api.urls")),
    path("", include("tasks_app.api.urls")),
    path("", include("reminders.api.urls")),
    path("", include("notifications.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("analytics.api.urls")),
]

handler404 = "core.exceptions.json_not_found"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.ready, name="healthz"),
    path("healthz/live", health.live, name="healthz-live"),
    path("healthz/ready", health.ready, name="healthz-ready"),
    path("healthz/status", health.status, name="healthz-status"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api-auth/", include("rest_framework.urls")),
    # HTML pages people open from emails (not API: no JSON, session login where one is needed).
    path("unsubscribe/<str:token>/", notification_pages.unsubscribe, name="notification-unsubscribe"),
    path("notifications/preferences/", notification_pages.preferences, name="notification-preferences-page"),
    path("tasks/<int:task_id>/", task_page, name="task-page"),
]
