from django.apps import AppConfig


class IvrConfig(AppConfig):
    """IVR payments with TwiML <Pay>: payment flows per tenant (issue: IVR payments)."""

    name = "payments.ivr"
    label = "ivr"
