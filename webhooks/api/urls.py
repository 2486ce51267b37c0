from core.routers import Router
from webhooks.api import views

router = Router()
router.register("webhooks", views.WebhookSubscriptionViewSet, basename="webhook")
router.register(r"webhooks/(?P<webhook_pk>\d+)/deliveries", views.WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = router.urls
