"""Routes Twilio and load balancers call (mounted at the root by config/urls.py)."""

from django.urls import path

from payments.sessions import webhooks

urlpatterns = [
    path("twilio/pay/<str:token>/status/", webhooks.pay_status_callback, name="twilio-pay-status"),
    path("healthz", webhooks.healthz, name="healthz"),
]
