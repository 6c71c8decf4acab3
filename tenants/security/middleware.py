"""Session lifetime and the second-factor gate, for the admin and any later console.

The gate is one function, `mfa_redirect(request)`, used two ways:

- `RequireMFAMiddleware` applies it to every path under PAYDESK_MFA_PROTECTED_PATHS
  (`/admin/`, `/console/`): a console app mounted at /console/ is covered with no code;
- `@mfa_required` applies it to one view anywhere else (put it under
  `login_required`).

A signed-in user who has a device but has not used it in this session is sent to the
verify page; one without a device is sent to enrol when PAYDESK_REQUIRE_MFA is on.
"""

import time
from functools import wraps

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse

from tenants.services import Actor, audit_record
from tenants.signals import client_ip

LOGIN_AT_SESSION_KEY = "paydesk_login_at"


class SessionLifetimeMiddleware:
    """Ends a signed-in session PAYDESK_SESSION_MAX_AGE_SECONDS after its login, however
    active it was. (The idle limit is Django's own: SESSION_COOKIE_AGE with
    SESSION_SAVE_EVERY_REQUEST, so the session row expires unless a request renews it.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated:
            login_at = request.session.get(LOGIN_AT_SESSION_KEY)
            now = time.time()
            if not isinstance(login_at, int | float):
                request.session[LOGIN_AT_SESSION_KEY] = now  # a session from before this rule
            elif now - login_at > settings.PAYDESK_SESSION_MAX_AGE_SECONDS:
                audit_record(
                    action="admin.session_expired",
                    actor=Actor.for_user(user, ip_address=client_ip(request)),
                    target=user,
                    changes={"reason": "max_age", "seconds": settings.PAYDESK_SESSION_MAX_AGE_SECONDS},
                )
                logout(request)  # the request goes on as anonymous: pages ask for a login
        return self.get_response(request)


def _is_protected(path: str) -> bool:
    if not path.startswith(tuple(settings.PAYDESK_MFA_PROTECTED_PATHS)):
        return False
    # Signing in and out happen before and instead of the second factor.
    return path not in (reverse("admin:login"), reverse("admin:logout"))


def mfa_redirect(request):
    """None if the request may go on; else the redirect to the verify or enrol page."""
    from tenants.security.services import mfa_is_enrolled

    user = request.user
    if not user.is_authenticated or user.is_verified():
        return None
    if mfa_is_enrolled(user):
        target = reverse("security:verify")
    elif settings.PAYDESK_REQUIRE_MFA:
        target = reverse("security:overview")
    else:
        return None
    return redirect_to_login(request.get_full_path(), target, "next")


class RequireMFAMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _is_protected(request.path):
            redirect = mfa_redirect(request)
            if redirect is not None:
                return redirect
        return self.get_response(request)


def mfa_required(view):
    """The gate for one view outside PAYDESK_MFA_PROTECTED_PATHS."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        return mfa_redirect(request) or view(request, *args, **kwargs)

    return wrapped
