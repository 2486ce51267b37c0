from django.urls import path

from accounts.api import views
from core.routers import Router

router = Router()
router.register("auth/tokens", views.ApiTokenViewSet, basename="api-token")
router.register("users", views.UserLookupViewSet, basename="user")

urlpatterns = [
    path("auth/token/", views.LoginView.as_view(), name="auth-token"),
    *router.urls,
]
