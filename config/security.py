"""Response headers every page and API answer carries: Content-Security-Policy with a
nonce (django-csp), and `Cache-Control: no-store`.

How a view changes its own policy (docs/security.md):

- a page that another site may frame (an embedded agent console) is decorated with
  `allow_framing("https://crm.example.com")`: its `frame-ancestors` is replaced and
  Django's `X-Frame-Options: DENY` is left off for it;
- any other directive: django-csp's `csp_update` / `csp_replace` decorators.
"""

from csp.decorators import csp_replace
from csp.middleware import CSPMiddleware as _CSPMiddleware
from django.conf import settings
from django.utils.cache import add_never_cache_headers
from django.views.decorators.clickjacking import xframe_options_exempt


class CSPMiddleware(_CSPMiddleware):
    """django-csp's middleware, with a nonce in every policy.

    django-csp adds `'nonce-…'` only when a template asked for `request.csp_nonce`. The
    nonce is made for every response here, so the policy has the same shape on every page
    and a template that needs an inline script or style can always use
    `nonce="{{ request.csp_nonce }}"`."""

    def process_response(self, request, response):
        if hasattr(request, "csp_nonce"):
            str(request.csp_nonce)  # evaluates the lazy nonce, which puts it in the header
        return super().process_response(request, response)


class NoStoreMiddleware:
    """`Cache-Control: no-store` (and friends) on every response Django renders.

    API responses and admin pages show payment data and must not stay in a browser's or a
    proxy's cache. Paydesk has no public page worth caching, so the rule is simple: every
    API response gets it, whatever the view said; any other response gets it unless its
    view set its own Cache-Control. Static files are served by WhiteNoise above this
    middleware and keep their long-lived caching."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path_info.startswith(settings.PAYDESK_API_PATH_PREFIX) or not response.has_header("Cache-Control"):
            if response.has_header("Cache-Control"):
                del response["Cache-Control"]
            add_never_cache_headers(response)
        return response


def allow_framing(*ancestors: str):
    """Let the listed origins frame this view (CSP `frame-ancestors`), e.g.
    `@allow_framing("https://crm.example.com")` on an embedded console page.

    Every other view keeps `frame-ancestors` from PAYDESK_CSP_FRAME_ANCESTORS ('none' by
    default) and `X-Frame-Options: DENY`. Browsers that know CSP obey `frame-ancestors`
    and ignore X-Frame-Options; X-Frame-Options cannot name origins, so it is dropped for
    the framed view rather than contradict the policy."""
    if not ancestors:
        raise ValueError("allow_framing needs at least one origin (or \"'self'\").")

    def decorate(view):
        return xframe_options_exempt(csp_replace({"frame-ancestors": list(ancestors)})(view))

    return decorate
