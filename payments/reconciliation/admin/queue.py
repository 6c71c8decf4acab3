"""The exceptions queue: filters by tenant, connector, environment, reason and age; each
item linked to Stripe's dashboard; resolved with a note through the service (audited)."""

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.errors import ServiceError
from payments.reconciliation import selectors, services
from payments.reconciliation.admin.common import RESOLVE_ROLES, ReconcileNowMixin, ScopedConnectorFilter, external_link
from payments.reconciliation.models import ReconciliationItem
from tenants.admin_lists import ScalableListMixin, TenantListFilter
from tenants.admin_scoping import ServiceFormAdminMixin, ServiceModelForm, TenantScopedAdminMixin


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    BUCKETS = {"1d": (None, 1), "7d": (1, 7), "30d": (7, 30), "old": (30, None)}

    def lookups(self, request, model_admin):
        return [("1d", "under a day"), ("7d", "1–7 days"), ("30d", "7–30 days"), ("old", "over 30 days")]

    def queryset(self, request, queryset):
        if self.value() not in self.BUCKETS:
            return queryset
        young, old = self.BUCKETS[self.value()]
        now = timezone.now()
        if young is not None:
            queryset = queryset.filter(opened_at__lte=now - timedelta(days=young))
        if old is not None:
            queryset = queryset.filter(opened_at__gt=now - timedelta(days=old))
        return queryset


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("open", "open"), ("resolved", "resolved")]

    def queryset(self, request, queryset):
        if self.value() in ("open", "resolved"):
            return queryset.filter(resolved_at__isnull=self.value() == "open")
        return queryset


class ResolveForm(ServiceModelForm):
    resolution_note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=True,
        help_text="How this was resolved. Saved with your name; audited.",
    )

    class Meta:
        model = ReconciliationItem
        fields = ["resolution_note"]

    def save_via_service(self, data):
        if "resolution_note" not in data:
            return self.instance
        try:
            return services.reconciliation_item_resolve(
                item=self.instance, note=data["resolution_note"], actor=self.actor
            )
        except ServiceError as exc:
            raise ValidationError(exc.message) from exc


@admin.register(ReconciliationItem)
class ReconciliationItemAdmin(
    ReconcileNowMixin, ScalableListMixin, TenantScopedAdminMixin, ServiceFormAdminMixin, admin.ModelAdmin
):
    """The exceptions queue."""

    form = ResolveForm
    write_roles = RESOLVE_ROLES
    list_display = [
        "opened_at",
        "age",
        "tenant",
        "connector_name",
        "environment",
        "reason",
        "session_link",
        "stripe_link",
        "detail",
        "status",
    ]
    list_filter = [
        StatusFilter,
        "reason",
        AgeFilter,
        TenantListFilter,
        ScopedConnectorFilter,
        "connector__environment",
    ]
    list_select_related = ["tenant", "connector", "session"]
    # Newest first, the order ReconciliationItem.Meta.indexes serve under each filter.
    sortable_by = ["opened_at"]
    search_fields = ["subject__startswith", "stripe_object_id__startswith"]
    search_help_text = "Session id, or a Stripe id (pi_…, ch_…)."
    actions = ["reconcile_now"]
    readonly_fields = [
        "uuid",
        "tenant",
        "connector_name",
        "environment",
        "reason",
        "status",
        "session_link",
        "stripe_link",
        "detail",
        "paydesk_side",
        "stripe_side",
        "opened_at",
        "last_seen_at",
        "resolved_at",
        "resolved_by",
    ]
    fieldsets = [
        (None, {"fields": ["uuid", "tenant", "connector_name", "environment", "reason", "status", "detail"]}),
        ("Both sides", {"fields": ["session_link", "paydesk_side", "stripe_link", "stripe_side"]}),
        ("Resolution", {"fields": ["opened_at", "last_seen_at", "resolved_at", "resolved_by", "resolution_note"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None or not self.has_change_permission(request, obj):
            return [*self.readonly_fields, "resolution_note"]
        return self.readonly_fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.is_open)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Age")
    def age(self, obj):
        days = (timezone.now() - obj.opened_at).days
        return f"{days} d" if days else "today"

    @admin.display(description="Connector", ordering="connector__unique_name")
    def connector_name(self, obj):
        return obj.connector.unique_name

    @admin.display(description="Environment", ordering="connector__environment")
    def environment(self, obj):
        return obj.connector.environment

    @admin.display(description="Status")
    def status(self, obj):
        return "open" if obj.is_open else "resolved"

    @admin.display(description="Pay session")
    def session_link(self, obj):
        if not obj.session_id:
            return "—"
        url = reverse("admin:payments_paysession_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, obj.session.uuid)

    @admin.display(description="In Stripe")
    def stripe_link(self, obj):
        return external_link(selectors.item_dashboard_url(obj), obj.stripe_object_id)

    @admin.display(description="Paydesk says")
    def paydesk_side(self, obj):
        return _pairs(obj.paydesk_data)

    @admin.display(description="Stripe says")
    def stripe_side(self, obj):
        return _pairs(obj.stripe_data)


def _pairs(data: dict):
    if not data:
        return "—"
    return format_html(
        "<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", sorted(data.items()))
    )
