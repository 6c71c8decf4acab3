"""REST API v1 routes of this app (mounted under /api/v1/ by config/urls.py)."""

from rest_framework.routers import SimpleRouter

from payments.partner_webhooks.api.views import EventViewSet, WebhookEndpointViewSet

# Path converters: the endpoints' `lookup_value_converter = "uuid"`; a malformed id is a 404
# at the router, as on the other resources.
endpoints = SimpleRouter(use_regex_path=False)
endpoints.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
# Events are named by their webhook-id (evt_<32 hex>): a regex lookup.
events = SimpleRouter()
events.register("events", EventViewSet, basename="event")

urlpatterns = [*endpoints.urls, *events.urls]
