"""REST API v1 routes of this app (mounted under /api/v1/ by config/urls.py)."""

from rest_framework.routers import SimpleRouter

from payments.sessions.api.views import PaySessionViewSet

router = SimpleRouter()
router.register("pay-sessions", PaySessionViewSet, basename="pay-session")

urlpatterns = router.urls
