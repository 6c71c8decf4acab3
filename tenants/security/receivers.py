"""Signal receivers: the login time of a session, and the audit of lockouts. They only
record; every decision is made in middleware and services."""

import time

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from tenants.security.middleware import LOGIN_AT_SESSION_KEY
from tenants.services import Actor, audit_record
from tenants.signals import client_ip


@receiver(user_logged_in, dispatch_uid="security.session_login_time")
def remember_login_time(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[LOGIN_AT_SESSION_KEY] = time.time()


@receiver(user_locked_out, dispatch_uid="security.audit_locked_out")
def audit_locked_out(sender, request, username, ip_address, **kwargs):
    # django-axes sends this when a failure sets the lock (it has just counted the
    # failures) and again for each try refused while locked (it counts nothing then).
    failures = getattr(request, "axes_failures_since_start", None)
    audit_record(
        action="admin.locked_out" if failures is not None else "admin.login_refused_locked",
        actor=Actor(label=f"anonymous:{(username or '')[:150]}", ip_address=client_ip(request)),
        changes={"username": (username or "")[:150], "ip_address": ip_address, "failures": failures},
    )
