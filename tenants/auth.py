"""REST authentication: `Authorization: Bearer <API key>` resolves the tenant once.

The default permission denies anything without a tenant, and checks the scope a view
asks for: reads need `<area>:read`, writes `<area>:write`.
"""

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission

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


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request)
        if not header:
            return None
        parts = header.decode(errors="replace").split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise exceptions.AuthenticationFailed("Send the API key as 'Authorization: Bearer <key>'.")
        key = api_key_resolve(raw_key=parts[1])
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
