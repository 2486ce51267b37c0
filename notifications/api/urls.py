from django.urls import path
from rest_framework.routers import SimpleRouter

from notifications.api import views

router = SimpleRouter()
router.register("notifications", views.NotificationViewSet, basename="notification")

urlpatterns = [
    path("notifications/unsubscribe/<str:token>/", views.UnsubscribeView.as_view(), name="notification-unsubscribe"),
    path("me/notification-preferences/", views.PreferencesView.as_view(), name="notification-preferences"),
    *router.urls,
]
