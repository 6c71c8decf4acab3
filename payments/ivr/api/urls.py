"""REST API v1 routes of this sub-app (mounted under /api/v1/ by config/urls.py)."""

from django.urls import register_converter
from rest_framework.routers import SimpleRouter

from payments.ivr.api.views import PaymentFlowViewSet


class ReferenceConverter:
    """A payment reference in a URL: 1 to 32 digits, as callers key it in."""

    regex = "[0-9]{1,32}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ReferenceConverter, "reference")

router = SimpleRouter(use_regex_path=False)  # path converters: the viewsets' `lookup_value_converter = "uuid"`
router.register("payment-flows", PaymentFlowViewSet, basename="payment-flow")

urlpatterns: list = router.urls
