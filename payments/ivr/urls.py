"""Endpoints the providers call (mounted under / by config/urls.py): Twilio's requests
during an IVR payment (payments/ivr/views.py)."""

from django.urls import path

from payments.ivr import views

urlpatterns: list = [
    path("twilio/ivr/<str:token>/voice/", views.voice, name="ivr-voice"),
    path("twilio/ivr/<str:token>/amount/", views.amount, name="ivr-amount"),
    path("twilio/ivr/<str:token>/reference/", views.reference, name="ivr-reference"),
    path("twilio/ivr/<str:token>/confirm/", views.confirm, name="ivr-confirm"),
    path("twilio/ivr/<str:token>/studio/", views.studio_result, name="ivr-studio"),
    path("twilio/ivr/pay/<str:token>/status/", views.pay_status, name="ivr-pay-status"),
    path("twilio/ivr/pay/<str:token>/action/", views.pay_action, name="ivr-pay-action"),
    path("twilio/ivr/pay/<str:token>/retry/", views.pay_retry, name="ivr-pay-retry"),
]
