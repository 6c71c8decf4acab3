"""Admin pages in the tenant's time zone."""

import zoneinfo

from django.urls import reverse
from django.utils import timezone

from tenants.models import Tenant


class TenantTimeZoneMiddleware:
    """Times on admin pages are shown in the time zone of the user's tenants when they
    share one (a superuser, or a member of tenants in several zones, sees UTC; the format
    names the zone either way). A page about one tenant's object may narrow it further
    (the pay-session page uses the session's tenant)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and request.path.startswith(reverse("admin:index")):
            zones = set(Tenant.objects.filter(memberships__user=user).values_list("time_zone", flat=True))
            zone = zones.pop() if len(zones) == 1 else None
        if zone is None:
            return self.get_response(request)
        with timezone.override(zoneinfo.ZoneInfo(zone)):
            return self.get_response(request)
