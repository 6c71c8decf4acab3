"""django-otp-webauthn's ceremony endpoints, audited: a passkey added, used, refused.

The template tags of django-otp-webauthn reverse these by their own names
(`otp_webauthn:credential-registration-begin`, …), so urls.py mounts them under that
namespace. Passwordless login is off (OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN): a passkey
is asked for after the password, never instead of it.
"""

import json

from django_otp_webauthn import exceptions, views
from django_otp_webauthn.models import WebAuthnCredential

from tenants.security import services
from tenants.services import Actor
from tenants.signals import client_ip


def _actor(request) -> Actor:
    return Actor.for_user(request.user, ip_address=client_ip(request))


class CompleteRegistrationView(views.CompleteCredentialRegistrationView):
    def post(self, *args, **kwargs):
        response = super().post(*args, **kwargs)
        device = WebAuthnCredential.objects.get(pk=json.loads(response.content)["id"], user=self.request.user)
        services.webauthn_device_added(user=self.request.user, device=device, actor=_actor(self.request))
        return response


class CompleteAuthenticationView(views.CompleteCredentialAuthenticationView):
    def complete_auth(self, device):
        super().complete_auth(device)
        self.request.session.cycle_key()
        services.webauthn_verified(user=self.request.user, device=device, actor=_actor(self.request))

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.OTPWebAuthnApiError) and self.request.user.is_authenticated:
            services.webauthn_verify_failed(user=self.request.user, actor=_actor(self.request), reason=exc.code)
        return super().handle_exception(exc)
