"""REST API v1 routes of this app (mounted under /api/v1/ by config/urls.py)."""

from rest_framework.routers import SimpleRouter

from payments.sessions.api.views import PaySessionViewSet

router = SimpleRouter(use_regex_path=False)  # path converters: the viewsets' `lookup_value_converter = "uuid"`
router.register("pay-sessions", PaySessionViewSet, basename="pay-session")

urlpatterns = router.urls
