"""IVR payment flows: what a tenant's phone number plays, and the amounts partners
register for callers to pay by reference.

A flow is configuration only. Each <Pay> it runs on a call is a `payments.PaySession`
with channel "ivr" (so IVR payments share the agent sessions' callback storage, fold,
admin list and API), linked to its flow by an `IvrPayment` row.
"""

import secrets
import uuid

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from connectors.models import ConnectorInstance
from core.money import validate_currency
from payments.sessions.models import PaySession
from tenants.models import ApiKey, Tenant

# <Pay language> for cards (docs/twilio-pay.md §3.1); <Say> and <Gather> take the same codes.
LANGUAGES = ["en-US", "en-GB", "en-AU", "en-CA", "en-IN", "es-ES", "es-MX", "fr-CA", "fr-FR", "de-DE", "it-IT"]
# The <Pay validCardTypes> list (§3.1).
CARD_TYPES = ["visa", "mastercard", "amex", "maestro", "discover", "optima", "jcb", "diners-club", "enroute"]
MAX_FLOW_ATTEMPTS = 5

reference_validator = RegexValidator(r"^[0-9]{1,32}\Z", "A reference is 1 to 32 digits: callers key it in.")


def new_voice_token() -> str:
    return secrets.token_urlsafe(24)


class PaymentFlow(models.Model):
    class Operation(models.TextChoices):
        CHARGE = "charge", "Charge the card"
        TOKENIZE = "tokenize", "Tokenize the card (no charge)"

    class AmountSource(models.TextChoices):
        CALLER = "caller", "The caller keys in the amount"
        FIXED = "fixed", "A fixed amount"
        REFERENCE = "reference", "The caller keys a reference; the amount was registered through the API"

    class AmountEntry(models.TextChoices):
        UNITS_THEN_CENTS = "units-then-cents", "Dollars, then cents (two entries)"
        STAR_DECIMAL = "star-decimal", "One entry, * as the decimal point"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="payment_flows")
    name = models.CharField(max_length=100)
    connector = models.ForeignKey(ConnectorInstance, on_delete=models.PROTECT, related_name="payment_flows")
    is_active = models.BooleanField(
        default=True, help_text="A disabled flow answers callers politely and takes nothing."
    )
    # Unguessable part of the voice webhook URL; the Twilio signature check is the real guard.
    voice_token = models.CharField(max_length=64, unique=True, default=new_voice_token, editable=False)

    operation = models.CharField(max_length=8, choices=Operation.choices, default=Operation.CHARGE)
    token_type = models.CharField(
        max_length=16, choices=PaySession.TokenType.choices, default=PaySession.TokenType.REUSABLE
    )
    currency = models.CharField(max_length=3, default="USD", validators=[validate_currency])
    amount_source = models.CharField(max_length=16, choices=AmountSource.choices, default=AmountSource.CALLER)
    amount_entry = models.CharField(max_length=16, choices=AmountEntry.choices, default=AmountEntry.UNITS_THEN_CENTS)
    fixed_amount_minor = models.BigIntegerField(null=True, blank=True)
    min_amount_minor = models.BigIntegerField(null=True, blank=True)
    max_amount_minor = models.BigIntegerField(null=True, blank=True)

    language = models.CharField(max_length=5, choices=[(c, c) for c in LANGUAGES], default="en-US")
    prompts = models.JSONField(default=dict, blank=True, help_text="Prompt key → text; a missing key uses the default.")
    max_attempts = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_FLOW_ATTEMPTS)],
        help_text="Tries for each entry (amount, reference, confirmation) and payments after a decline. "
        "<Pay> itself allows at most 3 tries per card field.",
    )
    retry_on_decline = models.BooleanField(default=True, help_text="Offer another card after a decline.")
    timeout = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(60)], help_text="Seconds to wait for a key."
    )
    valid_card_types = models.CharField(max_length=200, default="visa mastercard amex")
    postal_code = models.BooleanField(default=True, help_text="Ask for the billing postal code.")
    security_code = models.BooleanField(default=True, help_text="Ask for the card's security code.")
    min_postal_code_length = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(16)]
    )
    description = models.CharField(max_length=200, blank=True, help_text="Posted on the gateway transaction.")
    parameters = models.JSONField(
        default=dict, blank=True, help_text="Flat name → value pairs sent as <Parameter> to the Pay Connector."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="ivr_flow_name_per_tenant"),
            models.CheckConstraint(
                condition=models.Q(max_attempts__gte=1, max_attempts__lte=MAX_FLOW_ATTEMPTS),
                name="ivr_flow_attempts_range",
            ),
            models.CheckConstraint(
                condition=(models.Q(fixed_amount_minor__isnull=True) | models.Q(fixed_amount_minor__gt=0))
                & (models.Q(min_amount_minor__isnull=True) | models.Q(min_amount_minor__gt=0))
                & (models.Q(max_amount_minor__isnull=True) | models.Q(max_amount_minor__gt=0)),
                name="ivr_flow_amounts_positive",
            ),
            models.CheckConstraint(
                condition=~models.Q(operation="charge", amount_source="fixed", fixed_amount_minor__isnull=True),
                name="ivr_flow_fixed_needs_amount",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_tokenization(self) -> bool:
        return self.operation == self.Operation.TOKENIZE

    @property
    def pay_max_attempts(self) -> int:
        """<Pay maxAttempts> takes 1-3 (docs/twilio-pay.md §3.1)."""
        return min(self.max_attempts, 3)

    @property
    def card_types(self) -> list[str]:
        return self.valid_card_types.split()


class PaymentReference(models.Model):
    """An amount a partner registered for a flow before the call: the caller keys the
    reference, hears the amount and confirms it."""

    class Status(models.TextChoices):
        OPEN = "open"
        PAID = "paid"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    flow = models.ForeignKey(PaymentFlow, on_delete=models.PROTECT, related_name="references")
    reference = models.CharField(max_length=32, validators=[reference_validator])
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, validators=[validate_currency])
    description = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True)
    paid_session = models.ForeignKey(PaySession, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    paid_at = models.DateTimeField(null=True, blank=True)
    registered_by_api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "flow", "reference"], name="ivr_reference_unique_per_flow"),
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="ivr_reference_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="ivr_reference_tenant_newest"),
            models.Index(fields=["tenant", "reference"], name="ivr_reference_tenant_search"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} ({self.status})"


class IvrPayment(models.Model):
    """One <Pay> run of a flow on a call: its PaySession, and the reference it pays."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    flow = models.ForeignKey(PaymentFlow, on_delete=models.PROTECT, related_name="payments")
    pay_session = models.ForeignKey(PaySession, on_delete=models.PROTECT, related_name="+")
    reference = models.ForeignKey(
        PaymentReference, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    pay_try = models.PositiveSmallIntegerField(default=1, help_text="1 for the first card; more after declines.")
    via_studio = models.BooleanField(default=False, help_text="Reported by an exported Studio flow.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "pay_session"], name="ivr_payment_one_per_session")]

    def __str__(self) -> str:
        return f"{self.flow} #{self.pay_try}"
