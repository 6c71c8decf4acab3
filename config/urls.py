"""The URL root. Each app owns its routes; this file only mounts them, by name, so that
config imports no app above it (docs/architecture.md)."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.api import api_not_found
from config.views import landing

admin.site.site_header = "Paydesk"
admin.site.site_title = "Paydesk admin"
admin.site.index_title = "Administration"
admin.site.site_url = "/"  # "View site": the landing page

api_v1 = [
    path("", include("tenants.api.urls")),
    path("", include("connectors.api.urls")),
    path("", include("payments.sessions.api.urls")),
    path("", include("payments.refunds.api.urls")),
    path("", include("payments.ivr.api.urls")),
    path("", include("payments.reconciliation.api.urls")),
    path("", include("payments.reports.api.urls")),
    path("", include("payments.partner_webhooks.api.urls")),
    path("", include("payments.console.api.urls")),
]

# A 500 under /api/ (outside DRF, which has its own) answers the API's error envelope.
handler500 = "config.api.server_error"

urlpatterns = [
    path("", landing, name="landing"),
    path("admin/", admin.site.urls),
    path("", include("tenants.security.urls")),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    re_path(r"^api/", api_not_found, name="api-not-found"),  # after every API route: the JSON 404
    path("", include("payments.sessions.urls")),
    path("", include("payments.ivr.urls")),
    path("", include("payments.reconciliation.urls")),
    path("", include("payments.reports.urls")),
    path("", include("payments.console.urls")),
]
