from django.apps import AppConfig


class IvrConfig(AppConfig):
    """IVR payments with TwiML <Pay>: payment flows per tenant (issue: IVR payments)."""

    name = "payments.ivr"
    label = "ivr"

    def ready(self):
        # The pay-session list's search box finds an IVR payment by the reference the
        # caller keyed (plugged in from here: the pay-session app never imports this one).
        from payments.ivr.selectors import pay_sessions_with_reference
        from payments.sessions import extensions

        extensions.register_admin_search("ivr-reference", pay_sessions_with_reference)
