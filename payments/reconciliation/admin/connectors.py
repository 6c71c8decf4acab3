"""Connector health (a revoked key shows as unhealthy), "reconcile now", and the
per-session reconciliation states."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from payments.reconciliation import services
from payments.reconciliation.admin.common import ReconcileNowMixin, ScopedConnectorFilter, major_units
from payments.reconciliation.models import ConnectorHealth, ReconciliationItem, SessionReconciliation
from tenants.admin_lists import COUNT_CAP, AtLeast, ScalableListMixin, TenantListFilter
from tenants.admin_scoping import ReadOnlyAdminMixin, TenantScopedAdminMixin, admin_actor


@admin.register(ConnectorHealth)
class ConnectorHealthAdmin(ReadOnlyAdminMixin, ReconcileNowMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    """Every connector's reconciliation health; a revoked key shows here as unhealthy."""

    list_display = [
        "unique_name",
        "tenant",
        "environment",
        "mode",
        "health",
        "last_success",
        "last_error",
        "open_items",
    ]
    list_filter = ["environment", TenantListFilter]
    list_select_related = ["tenant", "sync_state"]
    actions = ["reconcile_now"]
    fields = list_display
    readonly_fields = list_display

    def connectors_of(self, queryset):
        return queryset.select_related("tenant")

    @admin.display(description="Health")
    def health(self, obj):
        state = getattr(obj, "sync_state", None)
        if state is None or state.last_attempt_at is None:
            return "never synced"
        return (
            "healthy"
            if state.healthy
            else format_html('<img src="{}" alt=""> <strong>{}</strong>', static("admin/img/icon-no.svg"), "unhealthy")
        )

    @admin.display(description="Last complete sync")
    def last_success(self, obj):
        state = getattr(obj, "sync_state", None)
        return state.last_success_at if state and state.last_success_at else "—"

    @admin.display(description="Last error")
    def last_error(self, obj):
        state = getattr(obj, "sync_state", None)
        return state.last_error if state and state.last_error else "—"

    @admin.display(description="Open exceptions")
    def open_items(self, obj):
        # Counted up to the admin lists' cap, on the open items' index: a queue this long
        # is read through its filters, not counted.
        open_items = ReconciliationItem.objects.filter(
            tenant_id=obj.tenant_id, connector=obj, resolved_at__isnull=True
        ).values("pk")
        count = open_items[: COUNT_CAP + 1].count()
        count = AtLeast(COUNT_CAP) if count > COUNT_CAP else count
        url = reverse("admin:reconciliation_reconciliationitem_changelist")
        return format_html('<a href="{}?connector={}&status=open">{}</a>', url, obj.pk, count)

    def get_urls(self):
        view = self.admin_site.admin_view(self.reconcile_view)
        return [path("<int:pk>/reconcile/", view, name="reconciliation_connector_reconcile"), *super().get_urls()]

    def reconcile_view(self, request, pk):
        """GET: confirm; POST: "reconcile now" for one connector, back to where it came from."""
        connector = self.get_queryset(request).filter(pk=pk).first()
        if connector is None:
            raise Http404("No such object.")
        if not self.has_reconcile_permission(request, connector):
            raise PermissionDenied
        back = request.POST.get("next") or request.GET.get("next") or ""
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = reverse("admin:reconciliation_connectorhealth_changelist")
        if request.method == "POST":
            services.reconcile_request(connector=connector, actor=admin_actor(request))
            self.message_user(request, f"Reconciliation of {connector} requested.", messages.SUCCESS)
            return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "connector": connector,
            "next": back,
            "opts": self.opts,
            "title": f"Reconcile {connector} now?",
        }
        return TemplateResponse(request, "admin/reconciliation/confirm_reconcile.html", context)


@admin.register(SessionReconciliation)
class SessionReconciliationAdmin(
    ReadOnlyAdminMixin, ReconcileNowMixin, ScalableListMixin, TenantScopedAdminMixin, admin.ModelAdmin
):
    list_display = [
        "session",
        "tenant",
        "connector",
        "state",
        "detail",
        "charge_id",
        major_units("fee", currency_field="stripe_currency"),
        major_units("net", currency_field="stripe_currency"),
        "payout_id",
        "checked_at",
    ]
    list_filter = ["state", ScopedConnectorFilter, TenantListFilter]
    list_select_related = ["session", "tenant", "connector"]
    sortable_by: list[str] = []  # newest first (the primary key's order), within the tenant's index
    search_fields = ["charge_id__startswith", "stripe_object_id__startswith"]
    actions = ["reconcile_now"]

    # Amounts in major units on the page; the same objects in both lists (Django matches them).
    _money = {
        name: major_units(name, currency_field="stripe_currency")
        for name in ("stripe_amount", "amount_refunded", "fee", "net")
    }

    def get_fields(self, request, obj=None):
        return [self._money.get(f.name, f.name) for f in self.model._meta.fields]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)
