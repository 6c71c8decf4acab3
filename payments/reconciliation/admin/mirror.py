"""The Stripe mirror, read-only."""

from django.contrib import admin

from payments.reconciliation.admin.common import ScopedConnectorFilter
from payments.reconciliation.models import (
    StripeBalanceTransaction,
    StripeCharge,
    StripeDispute,
    StripePayout,
    StripeRefund,
    StripeWebhookEvent,
)
from tenants.admin_lists import ScalableListMixin
from tenants.admin_scoping import ReadOnlyAdminMixin, TenantScopedAdminMixin


class MirrorAdmin(ReadOnlyAdminMixin, ScalableListMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    """The local copy of Stripe, read-only: it changes only by syncs and webhooks. Newest
    first and a search by Stripe id, each on an index that leads with the tenant."""

    list_select_related = ["connector"]
    list_filter = [ScopedConnectorFilter]
    search_fields = ["stripe_id__startswith"]
    sortable_by: list[str] = []

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


admin.site.register(
    StripeCharge,
    MirrorAdmin,
    list_display=[
        "stripe_id",
        "connector",
        "amount",
        "currency",
        "status",
        "amount_refunded",
        "payment_intent_id",
        "created",
    ],
)
admin.site.register(StripeRefund, MirrorAdmin, list_display=["stripe_id", "connector", "charge_id", "amount", "status"])
admin.site.register(
    StripeDispute, MirrorAdmin, list_display=["stripe_id", "connector", "charge_id", "amount", "reason", "status"]
)
admin.site.register(
    StripeBalanceTransaction,
    MirrorAdmin,
    list_display=[
        "stripe_id",
        "connector",
        "type",
        "reporting_category",
        "amount",
        "fee",
        "net",
        "available_on",
        "payout_id",
    ],
)
admin.site.register(
    StripePayout,
    MirrorAdmin,
    list_display=["stripe_id", "connector", "amount", "currency", "status", "automatic", "arrival_date"],
)
admin.site.register(
    StripeWebhookEvent,
    MirrorAdmin,
    list_display=["event_id", "connector", "type", "stripe_created", "received_at", "outcome"],
    search_fields=["event_id__startswith"],
)
