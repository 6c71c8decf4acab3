"""The Stripe mirror, read-only."""

from django.contrib import admin

from payments.reconciliation.admin.common import ScopedConnectorFilter, major_units
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

    money_fields: tuple[str, ...] = ("amount",)  # minor units in the table, major units on the page

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        # The same objects in get_fields and get_readonly_fields (Django matches them).
        self._money = {name: major_units(name) for name in self.money_fields}

    def _shown(self):
        return [self._money.get(f.name, f.name) for f in self.model._meta.fields if f.name != "currency"]

    def get_fields(self, request, obj=None):
        return self._shown()

    def get_readonly_fields(self, request, obj=None):
        return self._shown()


def mirror_admin(model, *, money=("amount",), **options):
    """Register `model` read-only, its amounts in major units (with the currency)."""
    columns = {name: major_units(name) for name in money}
    options["list_display"] = [columns.get(name, name) for name in options["list_display"] if name != "currency"]
    admin.site.register(model, MirrorAdmin, money_fields=tuple(money), **options)


mirror_admin(
    StripeCharge,
    money=("amount", "amount_refunded"),
    list_display=["stripe_id", "connector", "amount", "status", "amount_refunded", "payment_intent_id", "created"],
)
mirror_admin(StripeRefund, list_display=["stripe_id", "connector", "charge_id", "amount", "status"])
mirror_admin(StripeDispute, list_display=["stripe_id", "connector", "charge_id", "amount", "reason", "status"])
mirror_admin(
    StripeBalanceTransaction,
    money=("amount", "fee", "net"),
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
mirror_admin(StripePayout, list_display=["stripe_id", "connector", "amount", "status", "automatic", "arrival_date"])
admin.site.register(
    StripeWebhookEvent,
    MirrorAdmin,
    money_fields=(),
    list_display=["event_id", "connector", "type", "stripe_created", "received_at", "outcome"],
    list_filter=[ScopedConnectorFilter, "outcome"],  # malformed events are kept for inspection
    search_fields=["event_id__startswith"],
)
