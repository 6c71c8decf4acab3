"""What the reconciliation admins share: links, the scoped connector filter, "reconcile now"."""

from django.contrib import admin, messages
from django.utils.html import format_html

from connectors.models import ConnectorInstance
from core.money import to_major_string
from payments.reconciliation import services
from tenants.admin_scoping import admin_actor, tenant_ids
from tenants.models import Role

# Finance resolves differences and asks for a reconciliation; owners and admins may too.
RESOLVE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.FINANCE})


def major_units(field: str, *, currency_field: str = "currency", label: str = ""):
    """An admin column (and read-only field) showing a minor-units amount as a person
    reads it: "12.50 USD", never 1250."""

    @admin.display(description=label or field.replace("_", " ").capitalize(), ordering=field)
    def show(obj):
        value, currency = getattr(obj, field), (getattr(obj, currency_field) or "").upper()
        if value is None:
            return "—"
        return f"{to_major_string(value, currency)} {currency}" if currency else str(value)

    show.__name__ = f"{field}_in_major_units"
    return show


def external_link(url: str, text: str):
    return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, text) if url else text or "—"


class ScopedConnectorFilter(admin.SimpleListFilter):
    """The connectors of the user's tenants, and no others, even as choices."""

    title = "connector"
    parameter_name = "connector"

    def lookups(self, request, model_admin):
        connectors = ConnectorInstance.objects.select_related("tenant").order_by("tenant__name", "unique_name")
        if not request.user.is_superuser:
            connectors = connectors.filter(tenant_id__in=tenant_ids(request))
        return [(str(c.pk), f"{c.tenant.name} · {c.unique_name}") for c in connectors]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(connector_id=value) if value.isdigit() else queryset.none()


class ReconcileNowMixin:
    """ "Reconcile now" for the connectors behind the selected rows."""

    reconcile_roles = RESOLVE_ROLES

    def has_reconcile_permission(self, request, obj=None):
        return self._allowed(request, obj, self.reconcile_roles)

    def connectors_of(self, queryset):
        return ConnectorInstance.objects.filter(pk__in=queryset.values("connector_id")).select_related("tenant")

    @admin.action(description="Reconcile now (sync with Stripe, then match)", permissions=["reconcile"])
    def reconcile_now(self, request, queryset):
        queryset = self.scope_queryset(request, queryset, roles=self.reconcile_roles)
        connectors = list(self.connectors_of(queryset))
        for connector in connectors:
            services.reconcile_request(connector=connector, actor=admin_actor(request))
        self.message_user(request, f"Reconciliation requested for {len(connectors)} connector(s).", messages.SUCCESS)
