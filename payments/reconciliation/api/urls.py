"""REST API v1 routes of this sub-app (mounted under /api/v1/ by config/urls.py)."""

from rest_framework.routers import SimpleRouter

from payments.reconciliation.api.views import ReconciliationItemViewSet

router = SimpleRouter(use_regex_path=False)  # path converters: the viewsets' `lookup_value_converter = "uuid"`
router.register("reconciliation/items", ReconciliationItemViewSet, basename="reconciliation-item")

urlpatterns = router.urls
