"""REST API v1 routes of this sub-app (mounted under /api/v1/ by config/urls.py)."""

from rest_framework.routers import SimpleRouter

from payments.ivr.api.views import PaymentFlowViewSet

router = SimpleRouter()
router.register("payment-flows", PaymentFlowViewSet, basename="payment-flow")

urlpatterns: list = router.urls
