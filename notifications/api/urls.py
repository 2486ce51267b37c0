from django.urls import path

from core.routers import Router
from notifications.api import views

router = Router()
router.register("notifications", views.NotificationViewSet, basename="notification")

urlpatterns = [
    path("me/notification-preferences/", views.PreferencesView.as_view(), name="notification-preferences"),
    *router.urls,
]
