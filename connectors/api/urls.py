"""REST API v1 routes of this app (mounted under /api/v1/ by config/urls.py)."""

from rest_framework.routers import SimpleRouter

from connectors.api.views import ConnectorViewSet

router = SimpleRouter(use_regex_path=False)  # path converters: the viewsets' `lookup_value_converter = "uuid"`
router.register("connectors", ConnectorViewSet, basename="connector")

urlpatterns = router.urls
