"""REST API v1 routes of this app (mounted under /api/v1/ by config/urls.py)."""

from django.urls import path

from payments.console.api.views import ConsoleLinkView

urlpatterns = [
    path("console-links/", ConsoleLinkView.as_view(), name="console-link"),
]
