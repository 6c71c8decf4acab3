from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from connectors.api.views import ConnectorViewSet
from payments.sessions import webhooks
from payments.sessions.api.views import PaySessionViewSet
from tenants.api.views import TenantView

router = SimpleRouter()
router.register("connectors", ConnectorViewSet, basename="connector")
router.register("pay-sessions", PaySessionViewSet, basename="pay-session")

api_v1 = [
    path("tenant/", TenantView.as_view(), name="tenant"),
    *router.urls,
    path("", include("payments.ivr.api.urls")),
    path("", include("payments.reconciliation.api.urls")),
    path("", include("payments.reports.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("twilio/pay/<str:token>/status/", webhooks.pay_status_callback, name="twilio-pay-status"),
    path("healthz", webhooks.healthz, name="healthz"),
    path("", include("payments.ivr.urls")),
    path("", include("payments.reconciliation.urls")),
    path("", include("payments.reports.urls")),
]
