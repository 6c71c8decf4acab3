"""The second-factor pages: enrol (authenticator app, passkey, recovery codes) and verify.

They look like the admin (they extend its base template) and are reached from it:
RequireMFAMiddleware sends a signed-in user here with ?next= the page they asked for.
"""

import qrcode
import qrcode.image.svg
from axes.handlers.proxy import AxesProxyHandler
from django.contrib import admin
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp_webauthn.models import WebAuthnCredential

from tenants.security import services
from tenants.security.lockout import lockout_response
from tenants.security.models import TotpDevice
from tenants.services import Actor
from tenants.signals import client_ip


def _actor(request) -> Actor:
    return Actor.for_user(request.user, ip_address=client_ip(request))


def _next_url(request) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("admin:index")


def _render(request, template: str, status: int = 200, **context):
    context = {
        **admin.site.each_context(request),
        "is_nav_sidebar_enabled": False,  # the admin's pages are out of reach until verified
        "next": _next_url(request),
        **context,
    }
    return render(request, template, context, status=status)


def _needs_verification(request) -> bool:
    """A user with a device manages devices only after using one in this session: a
    stolen password alone must not add the thief's own device."""
    return services.mfa_is_enrolled(request.user) and not request.user.is_verified()


def _to_verify(request):
    return redirect(f"{reverse('security:verify')}?{request.GET.urlencode()}")


@login_required
def overview(request):
    if _needs_verification(request):
        return _to_verify(request)
    user = request.user
    return _render(
        request,
        "security/overview.html",
        title="Second factor",
        enrolled=services.mfa_is_enrolled(user),
        totp_devices=TotpDevice.objects.filter(user=user, confirmed=True).order_by("created_at"),
        passkeys=WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at"),
        recovery_codes_left=services.recovery_codes_left(user),
    )


def _qr_svg(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    return mark_safe(image.to_string(encoding="unicode"))  # noqa: S308 - SVG we drew from our own URI


@login_required
def totp(request):
    if _needs_verification(request):
        return _to_verify(request)
    user = request.user
    error = ""
    device = None
    if request.method == "POST":
        device_id = request.POST.get("device", "")
        confirmed = services.totp_enrolment_confirm(
            user=user,
            device_id=int(device_id) if device_id.isdigit() else 0,
            token=request.POST.get("code", ""),
            actor=_actor(request),
        )
        if confirmed is not None:
            otp_login(request, confirmed)
            request.session.cycle_key()
            if services.recovery_codes_left(user) == 0:
                return _recovery_codes_page(request)
            return redirect(_next_url(request))
        error = "That code was not accepted. Enter the 6-digit code the app shows now."
        device = TotpDevice.objects.filter(pk=device_id or 0, user=user, confirmed=False).first()
    device = device or services.totp_enrolment_start(user=user)
    secret = device.base32_secret
    return _render(
        request,
        "security/totp.html",
        status=400 if error else 200,
        title="Set up an authenticator app",
        device=device,
        qr_svg=_qr_svg(device.config_url),
        secret_groups=[secret[i : i + 4] for i in range(0, len(secret), 4)],
        error=error,
    )


def _recovery_codes_page(request):
    codes = services.recovery_codes_generate(user=request.user, actor=_actor(request))
    return _render(request, "security/recovery_codes.html", title="Your recovery codes", codes=codes)


@login_required
@require_POST
def recovery_codes(request):
    if not request.user.is_verified():
        return _to_verify(request) if services.mfa_is_enrolled(request.user) else redirect("security:overview")
    return _recovery_codes_page(request)


VERIFY_ERROR = (
    "That code was not accepted. Enter the code your authenticator app shows now, or an unused "
    "recovery code. After several wrong codes, each new try waits a few seconds longer."
)


@login_required
def verify(request):
    user = request.user
    if user.is_verified():
        return redirect(_next_url(request))
    if not services.mfa_is_enrolled(user):
        return redirect(f"{reverse('security:overview')}?{request.GET.urlencode()}")
    # A wrong code counts as a failed login (django-axes): ten lock the username and
    # address like ten wrong passwords, and a locked username gets no further here.
    credentials = {"username": user.get_username()}
    if not AxesProxyHandler.is_allowed(request, credentials):
        logout(request)
        return lockout_response(request)
    error = ""
    if request.method == "POST":
        device = services.mfa_verify(user=user, token=request.POST.get("code", ""), actor=_actor(request))
        if device is not None:
            otp_login(request, device)
            request.session.cycle_key()
            return redirect(_next_url(request))
        AxesProxyHandler.user_login_failed(sender=verify, credentials=credentials, request=request)
        if getattr(request, "axes_locked_out", False):
            logout(request)
            return lockout_response(request)
        error = VERIFY_ERROR
    return _render(
        request,
        "security/verify.html",
        status=400 if error else 200,
        title="Second factor",
        error=error,
        has_totp=TotpDevice.objects.filter(user=user, confirmed=True).exists(),
        has_passkeys=WebAuthnCredential.objects.filter(user=user, confirmed=True).exists(),
        recovery_codes_left=services.recovery_codes_left(user),
    )
