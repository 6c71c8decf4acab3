"""REST authentication: `Authorization: Bearer <API key>` resolves the tenant once.

The default permission denies anything without a tenant, and checks the scope a view
asks for: reads need `<area>:read`, writes `<area>:write`.

Rate limits are applied here too, while authenticating: DRF checks its throttles only
after authentication and permissions, so a flood of wrong keys (401) or of calls
without a key would never reach them. A valid key is limited per key
(PAYDESK_API_RATE); a request without a valid key per client address
(PAYDESK_API_ANON_RATE). Both count in the shared cache (Redis), as DRF's throttles do.
"""

import math
from dataclasses import dataclass

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.throttling import SimpleRateThrottle

from tenants.models import ApiKey, Tenant
from tenants.services import Actor, api_key_resolve


@dataclass(frozen=True)
class ApiPrincipal:
    """request.user for an API call: the key and its tenant."""

    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False

    @property
    def tenant(self) -> Tenant:
        return self.api_key.tenant


class TenantSuspended(exceptions.PermissionDenied):
    default_code = "tenant_suspended"
    default_detail = "This tenant is suspended; contact Paydesk support."


class RateLimited(exceptions.Throttled):
    default_code = "rate_limited"

    def __init__(self, wait: float | None):
        seconds = max(1, math.ceil(wait or 1))
        super().__init__(wait=seconds, detail=f"Too many requests; retry in {seconds} s.")


class KeyRateThrottle(SimpleRateThrottle):
    """Requests per API key (PAYDESK_API_RATE, e.g. "1200/min")."""

    scope = "api_key"

    def __init__(self, key: ApiKey):
        self.ident = key.pk
        super().__init__()

    def get_rate(self):
        return settings.PAYDESK_API_RATE

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.ident}


class AddressRateThrottle(SimpleRateThrottle):
    """Requests without a valid key, per client address (PAYDESK_API_ANON_RATE). The
    address is REMOTE_ADDR, or the one PAYDESK_NUM_PROXIES trusted proxies name in
    X-Forwarded-For (DRF's NUM_PROXIES)."""

    scope = "anon"

    def get_rate(self):
        return settings.PAYDESK_API_ANON_RATE

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def _throttle(throttle: SimpleRateThrottle, request) -> None:
    if not throttle.allow_request(request, None):
        raise RateLimited(throttle.wait())


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request).decode(errors="replace")
        parts = header.split()
        well_formed = len(parts) == 2 and parts[0].lower() == "bearer" and "\x00" not in parts[1]
        key = api_key_resolve(raw_key=parts[1]) if well_formed else None
        if key is None or key.is_revoked:
            _throttle(AddressRateThrottle(), request)
        else:
            _throttle(KeyRateThrottle(key), request)
        if not header:
            return None
        if not well_formed:
            raise exceptions.AuthenticationFailed("Send the API key as 'Authorization: Bearer <key>'.")
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.is_revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked.", code="key_revoked")
        if not key.tenant.is_active:
            raise TenantSuspended()
        return ApiPrincipal(key), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="paydesk"'


class HasTenantScope(BasePermission):
    """Allow only API-key callers whose key holds the scope the view needs.

    A view sets `scope_area = "connectors"` (reads need connectors:read, writes
    connectors:write) and may map actions to explicit scopes in `action_scopes`.
    """

    def has_permission(self, request, view) -> bool:
        if getattr(view, request.method.lower(), None) is None:
            # Before the scope: a method the route does not have is 405, not a missing scope.
            raise exceptions.MethodNotAllowed(request.method)
        key = request.auth
        if not isinstance(key, ApiKey):
            return False
        needed = required_scope(request, view)
        if needed and needed not in key.scopes:
            raise exceptions.PermissionDenied(f"This API key lacks the {needed!r} scope.", code="missing_scope")
        return True


def required_scope(request, view) -> str | None:
    action = getattr(view, "action", None)
    explicit = getattr(view, "action_scopes", {})
    if action in explicit:
        return explicit[action]
    area = getattr(view, "scope_area", None)
    if area is None:
        return None
    return f"{area}:read" if request.method in SAFE_METHODS else f"{area}:write"


def request_tenant(request) -> Tenant:
    return request.auth.tenant


def request_actor(request) -> Actor:
    return Actor.for_api_key(request.auth, ip_address=request.META.get("REMOTE_ADDR"))


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the Bearer API key in the OpenAPI schema (and the docs' Authorize box)."""

    target_class = "tenants.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A Paydesk API key: `Authorization: Bearer pdk_…`"}
