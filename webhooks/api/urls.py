"""Routes of the webhooks API, included under /api/v1/ and /api/v2/ (see pod_gateway/urls.py)."""

from api.routers import OptionalSlashRouter
from webhooks.api import views

router = OptionalSlashRouter()
router.register("webhooks", views.WebhookSubscriptionViewSet, basename="webhook")
router.register("webhook-deliveries", views.WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = router.urls
