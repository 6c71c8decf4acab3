"""Endpoints the providers call (mounted under / by config/urls.py)."""

from django.urls import path

from payments.reconciliation import webhooks

urlpatterns = [
    path("stripe/webhooks/<uuid:connector_id>/", webhooks.stripe_webhook, name="stripe-webhook"),
]
