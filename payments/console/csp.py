"""The Content-Security-Policy of the console's pages, in one place.

Every console page loads its script and style from this origin only (no inline script or
style, so a nonce is never needed), and may be framed by nobody, except the embedded
page, which the tenant's listed origins may frame (`frame-ancestors`); for that one,
Django's `X-Frame-Options: DENY` is left off, since it cannot name origins and browsers
that know CSP ignore it anyway.

Merging with django-csp (a project-wide policy from its middleware): `apply` below is the
only function to change. Its body becomes

    if ancestors:
        response._csp_replace = {"frame-ancestors": ancestors}   # what @csp_replace sets
        response.xframe_options_exempt = True

and POLICY goes (the project's policy is the same or stricter, plus nonces). Views keep
calling `allow_framing_by(response, origins)` for their per-tenant origins, which a static
decorator (`@csp_replace({...})`) cannot express.
"""

from functools import wraps

POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def allow_framing_by(response, origins: list[str]):
    """Let `origins` frame this response (none listed: nobody may)."""
    response.console_frame_ancestors = list(origins)
    return response


def apply(response) -> None:
    ancestors = getattr(response, "console_frame_ancestors", None) or []
    policy = {**POLICY, "frame-ancestors": ancestors or ["'none'"]}
    response["Content-Security-Policy"] = "; ".join(f"{name} {' '.join(values)}" for name, values in policy.items())
    if ancestors:
        response.xframe_options_exempt = True


def console_csp(view):
    """Decorate every console view with this."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        apply(response)
        return response

    return wrapped
