"""REST API v1 routes of this app (mounted under /api/v1/ by config/urls.py)."""

from rest_framework.routers import SimpleRouter

from payments.partner_webhooks.api.views import EventViewSet, WebhookEndpointViewSet

router = SimpleRouter()
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("events", EventViewSet, basename="event")

urlpatterns = router.urls
