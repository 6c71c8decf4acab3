"""REST API v1 routes of this app (mounted under /api/v1/ by config/urls.py)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from payments.refunds.api.views import PaySessionRefundViewSet, RefundViewSet

router = SimpleRouter(use_regex_path=False)  # path converters: `lookup_value_converter = "uuid"`
router.register("refunds", RefundViewSet, basename="refund")

urlpatterns = [
    path(
        "pay-sessions/<uuid:id>/refunds/",
        PaySessionRefundViewSet.as_view({"get": "list", "post": "create"}),
        name="pay-session-refunds",
    ),
    *router.urls,
]
