"""REST API v1 routes of this app (mounted under /api/v1/ by config/urls.py)."""

from django.urls import path

from tenants.api.views import TenantView

urlpatterns = [path("tenant/", TenantView.as_view(), name="tenant")]
