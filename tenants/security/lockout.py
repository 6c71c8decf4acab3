"""django-axes hooks: the address a login comes from, and the page a locked login gets.

The page says the same for every username, existing or not: axes counts failures per
username *string* and per address, so an unknown name locks exactly like a real one.
"""

from django.conf import settings
from django.contrib import admin
from django.http import JsonResponse
from django.template.response import TemplateResponse

from tenants.signals import client_ip as _client_ip

LOCKED_MESSAGE = (
    "Sign-in is locked: there were too many failed sign-in attempts for this username or from "
    "this address. Sign-in stays locked for {minutes} minutes, even with the right password. "
    "If you need access sooner, ask a Paydesk superuser to lift the lock."
)


def locked_message() -> str:
    return LOCKED_MESSAGE.format(minutes=settings.PAYDESK_LOGIN_LOCKOUT_SECONDS // 60)


def client_ip(request) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the same address the audit log records."""
    return _client_ip(request)


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: 429 with the locked page (JSON for the passkey endpoints)."""
    if request.content_type == "application/json" or request.headers.get("x-requested-with") == "XMLHttpRequest":
        return JsonResponse({"detail": locked_message(), "code": "locked"}, status=429)
    context = {
        **admin.site.each_context(request),
        "title": "Sign-in locked",
        "message": locked_message(),
        "is_nav_sidebar_enabled": False,
    }
    return TemplateResponse(request, "security/locked.html", context, status=429).render()
