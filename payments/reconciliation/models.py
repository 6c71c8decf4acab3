"""Reconciliation with each connector's Stripe account.

* The mirror: what finance needs of the account (charges, payment intents, refunds,
  disputes, balance transactions, payouts), only the fields used, one row per
  (connector, Stripe id). Stripe ids link rows as plain strings, not foreign keys, so a
  row can arrive before the row it points at (webhooks come in any order).
* Sync state: a cursor per connector and list, the connector's health and its lease.
* Stored webhook events, unique per (connector, event id).
* One reconciliation record per pay session, and the exceptions queue.
"""

import uuid

from django.conf import settings
from django.db import models

from connectors.models import ConnectorInstance
from payments.sessions.models import PaySession
from tenants.models import Tenant


class MirrorRow(models.Model):
    """Fields every mirrored Stripe object has."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    connector = models.ForeignKey(ConnectorInstance, on_delete=models.PROTECT, related_name="+")
    stripe_id = models.CharField(max_length=255)
    created = models.DateTimeField(help_text="Stripe's `created`.")
    # When the data was true: the event's time for a webhook, the request's for a list.
    # The newer observation wins a tie in status rank (see mirror.merge).
    observed_at = models.DateTimeField()
    updated_at = models.DateTimeField(help_text="Last change here; a newer one re-checks the sessions concerned.")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.stripe_id


def _unique(name: str) -> models.UniqueConstraint:
    return models.UniqueConstraint(fields=["tenant", "connector", "stripe_id"], name=f"{name}_unique_per_connector")


def _admin_list(name: str, newest: str = "created") -> list[models.Index]:
    """What the mirror's admin list reads within a tenant: newest first, and a search by
    Stripe id, whole or a prefix (pattern ops: the database collation is not C)."""
    return [
        models.Index(fields=["tenant", f"-{newest}", "-id"], name=f"{name}_tenant_newest"),
        models.Index(
            fields=["tenant", "stripe_id" if newest == "created" else "event_id"],
            name=f"{name}_tenant_search",
            opclasses=["int8_ops", "varchar_pattern_ops"],
        ),
    ]


class StripeCharge(MirrorRow):
    amount = models.BigIntegerField()
    amount_refunded = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, help_text="Upper case, as Paydesk stores currencies.")
    status = models.CharField(max_length=16)
    disputed = models.BooleanField(default=False)
    payment_intent_id = models.CharField(max_length=255, blank=True)
    customer_id = models.CharField(max_length=255, blank=True)
    payment_method_id = models.CharField(max_length=255, blank=True)
    balance_transaction_id = models.CharField(max_length=255, blank=True)
    description = models.CharField(max_length=255, blank=True)
    paydesk_ref = models.UUIDField(null=True, blank=True, help_text="The session named in `Paydesk <uuid>`.")

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [_unique("stripe_charge")]
        indexes = [
            models.Index(fields=["connector", "created"], name="stripe_charge_conn_created"),
            models.Index(fields=["connector", "payment_intent_id"], name="stripe_charge_conn_pi"),
            models.Index(fields=["connector", "paydesk_ref"], name="stripe_charge_conn_ref"),
            models.Index(fields=["connector", "balance_transaction_id"], name="stripe_charge_conn_txn"),
            *_admin_list("stripe_charge"),
        ]


class StripePaymentIntent(MirrorRow):
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=32)
    latest_charge_id = models.CharField(max_length=255, blank=True)
    customer_id = models.CharField(max_length=255, blank=True)
    payment_method_id = models.CharField(max_length=255, blank=True)
    paydesk_ref = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [_unique("stripe_pi")]
        indexes = [models.Index(fields=["connector", "created"], name="stripe_pi_conn_created")]


class StripeRefund(MirrorRow):
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=32)
    reason = models.CharField(max_length=32, blank=True)
    failure_reason = models.CharField(max_length=100, blank=True)
    charge_id = models.CharField(max_length=255, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True)
    balance_transaction_id = models.CharField(max_length=255, blank=True)
    paydesk_refund = models.UUIDField(
        null=True, blank=True, help_text="The Paydesk refund its metadata names (made through Paydesk)."
    )

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [_unique("stripe_refund")]
        indexes = [
            models.Index(fields=["connector", "created"], name="stripe_refund_conn_created"),
            models.Index(fields=["connector", "charge_id"], name="stripe_refund_conn_ch"),
            *_admin_list("stripe_refund"),
        ]


class StripeDispute(MirrorRow):
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=32)
    reason = models.CharField(max_length=64, blank=True)
    charge_id = models.CharField(max_length=255, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [_unique("stripe_dispute")]
        indexes = [
            models.Index(fields=["connector", "created"], name="stripe_dispute_conn_created"),
            models.Index(fields=["connector", "charge_id"], name="stripe_dispute_conn_ch"),
            *_admin_list("stripe_dispute"),
        ]


class StripeBalanceTransaction(MirrorRow):
    type = models.CharField(max_length=48)
    reporting_category = models.CharField(max_length=48, blank=True)
    source_id = models.CharField(max_length=255, blank=True)
    amount = models.BigIntegerField()
    fee = models.BigIntegerField(default=0)
    net = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16)
    available_on = models.DateTimeField(null=True, blank=True)
    payout_id = models.CharField(max_length=255, blank=True, help_text="From the payout's own list, never guessed.")

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [_unique("stripe_txn")]
        indexes = [
            models.Index(fields=["connector", "created"], name="stripe_txn_conn_created"),
            models.Index(fields=["connector", "source_id"], name="stripe_txn_conn_source"),
            models.Index(fields=["connector", "payout_id"], name="stripe_txn_conn_payout"),
            *_admin_list("stripe_txn"),
        ]


class StripePayout(MirrorRow):
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16)
    automatic = models.BooleanField(default=False)
    arrival_date = models.DateTimeField(null=True, blank=True)
    balance_transaction_id = models.CharField(max_length=255, blank=True)
    transactions_linked_at = models.DateTimeField(
        null=True, blank=True, help_text="When its balance transactions were listed and linked (automatic payouts)."
    )

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [_unique("stripe_payout")]
        indexes = [
            models.Index(fields=["connector", "created"], name="stripe_payout_conn_created"),
            *_admin_list("stripe_payout"),
        ]


# --- Sync state -----------------------------------------------------------------------


class SyncCursor(models.Model):
    """Where the sync of one list of one connector stands.

    `high_water` is the newest `created` of a completed window. A window in progress keeps
    its lower bound, the last id stored (`starting_after`) and the newest `created` seen,
    written in the same transaction as each page: a run that dies resumes after the last
    stored page, with no gap and nothing stored twice.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    connector = models.ForeignKey(ConnectorInstance, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=32)
    high_water = models.BigIntegerField(default=0)
    window_gt = models.BigIntegerField(null=True, blank=True)
    window_max_created = models.BigIntegerField(default=0)
    starting_after = models.CharField(max_length=255, blank=True)
    pages = models.BigIntegerField(default=0)
    objects_seen = models.BigIntegerField(default=0)
    last_completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "connector", "kind"], name="sync_cursor_unique_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.connector_id}:{self.kind}@{self.high_water}"


class ConnectorSyncState(models.Model):
    """A connector's reconciliation health, and the lease that keeps syncs one at a time."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    connector = models.OneToOneField(ConnectorInstance, on_delete=models.PROTECT, related_name="sync_state")
    healthy = models.BooleanField(default=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True, help_text="Start of the last complete sync.")
    last_nightly_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error_permanent = models.BooleanField(default=False)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "connector sync state"

    def __str__(self) -> str:
        return f"{self.connector} ({'healthy' if self.healthy else 'unhealthy'})"


class StripeWebhookEvent(models.Model):
    """A verified Stripe event, stored before it is acknowledged and applied by a task."""

    class Outcome(models.TextChoices):
        QUEUED = "queued"
        APPLIED = "applied"
        IGNORED = "ignored"
        MALFORMED = "malformed"  # signed, but no usable event: kept for inspection, never applied

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    connector = models.ForeignKey(ConnectorInstance, on_delete=models.PROTECT, related_name="+")
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    stripe_created = models.DateTimeField()
    livemode = models.BooleanField(default=False)
    payload = models.JSONField(help_text="The event as received, card numbers masked.")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.QUEUED)
    problem = models.CharField(max_length=500, blank=True, help_text="Why a malformed event could not be used.")

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "connector", "event_id"], name="stripe_event_unique_per_connector"
            )
        ]
        indexes = _admin_list("stripe_event", newest="received_at")

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


# --- Results --------------------------------------------------------------------------


class State(models.TextChoices):
    MATCHED = "matched"
    PENDING = "pending", "pending (too recent to judge)"
    AMOUNT_MISMATCH = "amount_mismatch", "amount mismatch"
    CURRENCY_MISMATCH = "currency_mismatch", "currency mismatch"
    MISSING_IN_STRIPE = "missing_in_stripe", "missing in Stripe"
    REFUNDED = "refunded", "refunded (fully)"
    PARTIALLY_REFUNDED = "partially_refunded", "partially refunded"
    REFUND_MISSING_IN_STRIPE = "refund_missing_in_stripe", "refund missing in Stripe"
    DISPUTED = "disputed"
    STRIPE_ONLY = "stripe_only", "only in Stripe"


# States that are a difference finance must see: each opens an exception item. A refund
# is not one: Paydesk records every refund, those made in Stripe's dashboard included
# (payments.refunds), so a refunded session agrees with Stripe; a refund Paydesk
# recorded that Stripe lacks is.
DIFFERENCES = frozenset(
    {
        State.AMOUNT_MISMATCH,
        State.CURRENCY_MISMATCH,
        State.MISSING_IN_STRIPE,
        State.REFUND_MISSING_IN_STRIPE,
        State.DISPUTED,
        State.STRIPE_ONLY,
    }
)
# Items opened before refunds were recorded in Paydesk had the reason "refunded"; it stays
# a valid reason so those items still read, and each closes at its session's next check.
LEGACY_REASONS = frozenset({State.REFUNDED})


class SessionReconciliation(models.Model):
    """What Stripe says about one pay session (in this app, so payments needs no migration)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    connector = models.ForeignKey(ConnectorInstance, on_delete=models.PROTECT, related_name="+")
    session = models.OneToOneField(PaySession, on_delete=models.PROTECT, related_name="reconciliation")
    state = models.CharField(max_length=24, choices=State.choices, db_index=True)
    detail = models.CharField(max_length=500, blank=True)
    stripe_object_id = models.CharField(max_length=255, blank=True, help_text="The object the session matched.")
    charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    payment_intent_id = models.CharField(max_length=255, blank=True)
    stripe_amount = models.BigIntegerField(null=True, blank=True)
    stripe_currency = models.CharField(max_length=3, blank=True)
    amount_refunded = models.BigIntegerField(default=0)
    fee = models.BigIntegerField(null=True, blank=True)
    net = models.BigIntegerField(null=True, blank=True)
    available_on = models.DateTimeField(null=True, blank=True)
    payout_id = models.CharField(max_length=255, blank=True)
    checked_at = models.DateTimeField()
    matched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["connector", "state"], name="session_recon_conn_state"),
            # The admin list, newest first within a tenant, and by state.
            models.Index(fields=["tenant", "-id"], name="session_recon_tenant_newest"),
            models.Index(fields=["tenant", "state", "-id"], name="session_recon_tenant_state"),
            models.Index(
                fields=["tenant", "stripe_object_id"],
                name="session_recon_tenant_object",
                opclasses=["int8_ops", "varchar_pattern_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}: {self.state}"


class ReconciliationItem(models.Model):
    """One difference between Paydesk and Stripe, until a person resolves it with a note.

    Unique per (connector, reason, subject): the subject is the session's uuid, or the
    charge id for a Stripe-only charge. A run that sees the same difference refreshes the
    item; one that no longer sees it closes it; a resolved item whose data has changed
    since is opened again.
    """

    REASONS = [(s.value, s.label) for s in State if s in DIFFERENCES | LEGACY_REASONS]

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    connector = models.ForeignKey(ConnectorInstance, on_delete=models.PROTECT, related_name="+")
    session = models.ForeignKey(
        PaySession, null=True, blank=True, on_delete=models.PROTECT, related_name="reconciliation_items"
    )
    reason = models.CharField(max_length=24, choices=REASONS)
    subject = models.CharField(max_length=255)
    stripe_object_id = models.CharField(max_length=255, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    paydesk_data = models.JSONField(default=dict, blank=True)
    stripe_data = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64, editable=False)
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        verbose_name = "reconciliation exception"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "connector", "reason", "subject"], name="recon_item_unique_per_subject"
            ),
            models.CheckConstraint(
                condition=models.Q(resolved_at__isnull=True) | ~models.Q(resolution_note=""),
                name="recon_item_resolved_with_note",
            ),
        ]
        indexes = [
            # The queue (API cursor and admin pages), newest first within a tenant, under each
            # filter: all, open only, by reason, by connector. A page never reads sessions
            # beyond its own rows' (select_related joins them by primary key).
            models.Index(fields=["tenant", "-opened_at", "-id"], name="recon_item_tenant_newest"),
            models.Index(
                fields=["tenant", "-opened_at", "-id"],
                condition=models.Q(resolved_at__isnull=True),
                name="recon_item_tenant_open",
            ),
            models.Index(fields=["tenant", "reason", "-opened_at", "-id"], name="recon_item_tenant_reason"),
            models.Index(fields=["tenant", "connector", "-opened_at", "-id"], name="recon_item_tenant_connector"),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class ConnectorHealth(ConnectorInstance):
    """Connectors as the reconciliation admin lists them: health and "reconcile now"."""

    class Meta:
        proxy = True
        verbose_name = "connector reconciliation health"
        verbose_name_plural = "connector reconciliation health"
