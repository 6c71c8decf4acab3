"""Admin login auditing. The receivers only call the audit service."""

import ipaddress

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from tenants.services import Actor, audit_login, audit_login_failed


def client_ip(request) -> str | None:
    """The client's address as the server saw it (REMOTE_ADDR), if it is an IP address.

    Behind a reverse proxy this is the proxy's address unless the proxy hands the
    client's address down as REMOTE_ADDR (docs/security.md)."""
    value = request.META.get("REMOTE_ADDR") if request is not None else None
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


@receiver(user_logged_in, dispatch_uid="tenants.audit_login")
def on_login(sender, request, user, **kwargs):
    audit_login(user=user, actor=Actor.for_user(user, ip_address=client_ip(request)))


@receiver(user_login_failed, dispatch_uid="tenants.audit_login_failed")
def on_login_failed(sender, credentials, request=None, **kwargs):
    # Django has already masked the password in `credentials`; keep only the username.
    username = str(credentials.get(get_user_model().USERNAME_FIELD) or credentials.get("username") or "")[:150]
    audit_login_failed(username=username, actor=Actor(label=f"anonymous:{username}", ip_address=client_ip(request)))
