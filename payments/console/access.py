"""Who may use a console page, resolved once per request into `request.console`.

Two ways in:

- `member_required`: a signed-in user (Django login) with the role agent, admin or owner
  in a tenant. It is the one gate of every signed-in console view, so a second factor is
  required by adding one check here (the security work's `mfa_required`, or its
  middleware on /console/, which covers these views as they are).
- `page_token_required`: the embedded page, opened from a one-time link without a login,
  which sends its own signed token (services.page_token_*) with every request. No
  cookie is involved, so CSRF does not apply: the token is the proof. Once the API key
  that made the link is revoked (or the tenant suspended) the page acts no more and its
  token is not renewed; it may still show its session until the token runs out.
"""

from dataclasses import dataclass, field
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from payments.console import selectors
from payments.console.services import PAGE_TOKEN_HEADER, PageGrant, TokenRefused, link_actor, page_token_read
from payments.sessions.models import PaySession
from payments.sessions.selectors import pay_session_get
from tenants.admin_scoping import admin_actor
from tenants.models import Membership, Tenant
from tenants.services import Actor


@dataclass
class Access:
    mode: str  # "member" or "embed"
    actor: Actor
    user: object | None = None
    tenants: dict[int, tuple[Tenant, str]] = field(default_factory=dict)  # id -> (tenant, role)
    grant: PageGrant | None = None

    @property
    def embedded(self) -> bool:
        return self.mode == "embed"

    def session(self, uuid) -> PaySession:
        """The session this request may act on, or 404."""
        if self.grant is not None:
            if str(uuid) != self.grant.session_uuid:
                raise Http404("No such session.")
            return pay_session_get(tenant=self.grant.link.tenant, uuid=uuid)
        return selectors.console_session_get(tenants=self.tenants, user=self.user, uuid=uuid)

    def tenant(self, slug: str | None) -> tuple[Tenant, str]:
        """The tenant the index page works in: the one asked for, else the first by name."""
        ordered = sorted(self.tenants.values(), key=lambda tr: tr[0].name)
        for tenant, role in ordered:
            if tenant.slug == slug:
                return tenant, role
        return ordered[0]


def wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _member_tenants(request) -> dict[int, tuple[Tenant, str]]:
    """The active tenants where the user may use the console, with the role: one query."""
    memberships = Membership.objects.filter(
        user=request.user, role__in=selectors.CONSOLE_ROLES, tenant__status=Tenant.Status.ACTIVE
    ).select_related("tenant")
    return {m.tenant_id: (m.tenant, m.role) for m in memberships}


def member_required(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            if wants_json(request):
                return JsonResponse(
                    {
                        "error": {
                            "code": "login_required",
                            "message": "You are signed out. Sign in again.",
                            "fields": {},
                        }
                    },
                    status=401,
                )
            return redirect_to_login(request.get_full_path(), reverse("console:login"))
        tenants = _member_tenants(request)
        if not tenants:
            return render(request, "console/no_access.html", status=403)
        request.console = Access(mode="member", actor=admin_actor(request), user=request.user, tenants=tenants)
        return view(request, *args, **kwargs)

    return wrapped


def page_token_required(view):
    @csrf_exempt
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        token = request.headers.get(PAGE_TOKEN_HEADER) or request.POST.get("console_token", "")
        try:
            grant = page_token_read(token)
            if request.method == "POST" and not grant.may_act:
                raise TokenRefused("The access that opened this page has been withdrawn; it can no longer act.")
        except TokenRefused as exc:
            if wants_json(request):
                return JsonResponse({"error": {"code": "page_expired", "message": str(exc), "fields": {}}}, status=401)
            return render(request, "console/link_refused.html", {"message": str(exc)}, status=401)
        actor = link_actor(grant.link, ip_address=request.META.get("REMOTE_ADDR"))
        request.console = Access(mode="embed", actor=actor, grant=grant)
        return view(request, *args, **kwargs)

    return wrapped
