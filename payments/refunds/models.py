"""A refund of a pay session, as Paydesk asked Stripe for it or as Stripe reported it.

Several partial refunds may be made of one session; what they hold (pending and
succeeded ones) never exceeds the session's amount: payments.refunds.services reserves
each refund's amount under a lock on the session row before Stripe is called.
"""

import uuid

from django.conf import settings
from django.db import models

from connectors.models import ConnectorInstance
from payments.sessions.models import PaySession
from tenants.models import ApiKey, Tenant


class Refund(models.Model):
    class Status(models.TextChoices):
        # Stripe's statuses (https://docs.stripe.com/api/refunds/object#refund_object-status);
        # Stripe's `requires_action` is kept as pending: the money has not moved yet.
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELED = "canceled"

    class Reason(models.TextChoices):
        # Stripe's `reason` values; empty when none was given (the note says why).
        REQUESTED_BY_CUSTOMER = "requested_by_customer", "requested by customer"
        DUPLICATE = "duplicate"
        FRAUDULENT = "fraudulent"

    class Origin(models.TextChoices):
        PAYDESK = "paydesk", "Paydesk"
        STRIPE = "stripe", "made outside Paydesk (in Stripe)"

    # Statuses that hold part of the session's amount.
    HOLDING = (Status.PENDING, Status.SUCCEEDED)
    FINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELED})

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    session = models.ForeignKey(PaySession, on_delete=models.PROTECT, related_name="refunds")
    connector = models.ForeignKey(ConnectorInstance, on_delete=models.PROTECT, related_name="+")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, help_text="The session's.")
    reason = models.CharField(max_length=32, choices=Reason.choices, blank=True)
    note = models.TextField(blank=True)
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.PAYDESK)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    failure_reason = models.CharField(max_length=500, blank=True, help_text="Stripe's, or why Stripe never had it.")
    # The HTTP status the API answered a refusal with (402/502), so a replay answers the same.
    error_status = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    stripe_refund_id = models.CharField(max_length=255, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True, help_text="Stripe's `created`: the day reports count it.")
    stripe_observed_at = models.DateTimeField(null=True, blank=True, help_text="When Stripe's state was last read.")

    idempotency_key = models.CharField(max_length=255, blank=True, help_text="Empty for refunds made outside Paydesk.")
    request_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    requested_by_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.CharField(max_length=200, blank=True, help_text="Who asked, as text that survives them.")

    # Follow-up of a pending refund by Celery (tasks.py): when to ask Stripe again.
    next_check_at = models.DateTimeField(null=True, blank=True)
    checks = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="refund_idempotency_per_tenant",
            ),
            models.UniqueConstraint(
                fields=["connector", "stripe_refund_id"],
                condition=~models.Q(stripe_refund_id=""),
                name="refund_stripe_id_per_connector",
            ),
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "succeeded", "failed", "canceled"]),
                name="refund_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="refund_tenant_created"),
            models.Index(fields=["session", "status"], name="refund_session_status"),
            models.Index(fields=["tenant", "refunded_at"], name="refund_tenant_refunded"),
            # What the follow-up looks for: pending refunds due for another look (a few at most).
            models.Index(fields=["next_check_at"], condition=models.Q(status="pending"), name="refund_follow_up"),
        ]

    def __str__(self) -> str:
        return f"Refund {self.stripe_refund_id or self.uuid} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @property
    def made_outside_paydesk(self) -> bool:
        return self.origin == self.Origin.STRIPE
