"""The console's framing policy, in one place, on top of the project's Content-Security-
Policy (django-csp, config/settings/base.py: scripts and styles from this origin or with
the request's nonce, `frame-ancestors` from PAYDESK_CSP_FRAME_ANCESTORS, 'none' by
default, and `X-Frame-Options: DENY`).

Console pages load their script and stylesheet from this origin only (no inline script
or style), so they need no nonce. Every console page keeps the project's policy, except
the embedded page: the tenant's listed origins may frame it. Those origins are per tenant
and known only when the view has run, so the view sets them on its response
(`allow_framing_by`), which is what django-csp's `@csp_replace` decorator does for a
static list (config.security.allow_framing); and Django's `X-Frame-Options: DENY` is left
off for it, since it cannot name origins and browsers that know CSP ignore it anyway.
"""

from functools import wraps


def allow_framing_by(response, origins: list[str]):
    """Let `origins` frame this response (none listed: the project's policy, nobody)."""
    response.console_frame_ancestors = list(origins)
    return response


def apply(response) -> None:
    ancestors = getattr(response, "console_frame_ancestors", None) or []
    if ancestors:
        response._csp_replace = {"frame-ancestors": ancestors}  # read by django-csp's middleware
        response.xframe_options_exempt = True


def console_csp(view):
    """Decorate every console view with this."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        apply(response)
        return response

    return wrapped
