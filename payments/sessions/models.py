import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.fields.json import KeyTextTransform

from connectors.models import ConnectorInstance
from tenants.models import ApiKey, Tenant

# The fields Twilio's Payments API captures, in its own spelling (`Capture=` values).
CARD_FIELDS = ["payment-card-number", "expiration-date", "security-code", "postal-code"]
ACH_FIELDS = ["bank-routing-number", "bank-account-number"]
CAPTURE_FIELDS = CARD_FIELDS + ACH_FIELDS
MATCHER_FIELDS = [f"{f}-matcher" for f in CARD_FIELDS]

# Result values Twilio reports (docs/twilio-pay.md §2: the Payment resource table plus <Pay>'s two).
RESULTS = [
    "success",
    "payment-connector-error",
    "caller-interrupted-with-star",
    "caller-hung-up",
    "validation-error",
    "too-many-failed-attempts",
    "internal-error",
]


def new_callback_token() -> str:
    return secrets.token_urlsafe(24)


class PaySession(models.Model):
    class Channel(models.TextChoices):
        AGENT = "agent", "Agent"
        IVR = "ivr", "IVR"

    class PaymentMethod(models.TextChoices):
        CREDIT_CARD = "credit-card"
        ACH_DEBIT = "ach-debit"

    class TokenType(models.TextChoices):
        ONE_TIME = "one-time"
        REUSABLE = "reusable"
        PAYMENT_METHOD = "payment-method"

    class BankAccountType(models.TextChoices):
        CONSUMER_CHECKING = "consumer-checking"
        CONSUMER_SAVINGS = "consumer-savings"
        COMMERCIAL_CHECKING = "commercial-checking"

    class Status(models.TextChoices):
        CREATED = "created"
        CAPTURING = "capturing"
        READY = "ready"
        COMPLETING = "completing"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        EXPIRED = "expired"

    TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.EXPIRED})

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="pay_sessions")
    connector = models.ForeignKey(ConnectorInstance, on_delete=models.PROTECT, related_name="pay_sessions")
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.AGENT)
    call_sid = models.CharField(max_length=34, db_index=True)
    payment_sid = models.CharField(max_length=34, blank=True, db_index=True)
    idempotency_key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64, editable=False)
    # Unguessable part of the StatusCallback URL; the signature check is the real guard.
    callback_token = models.CharField(max_length=64, unique=True, default=new_callback_token, editable=False)

    # What was asked of Twilio.
    payment_method = models.CharField(max_length=16, choices=PaymentMethod.choices, default=PaymentMethod.CREDIT_CARD)
    amount_minor = models.BigIntegerField(null=True, blank=True, help_text="Empty when tokenizing.")
    currency = models.CharField(max_length=3)
    token_type = models.CharField(max_length=16, choices=TokenType.choices, blank=True)
    postal_code = models.BooleanField(default=True)
    security_code = models.BooleanField(default=True)
    min_postal_code_length = models.PositiveSmallIntegerField(null=True, blank=True)
    valid_card_types = models.CharField(max_length=200, blank=True)
    timeout = models.PositiveSmallIntegerField(null=True, blank=True)
    bank_account_type = models.CharField(max_length=24, choices=BankAccountType.choices, blank=True)
    confirmation = models.BooleanField(default=False)
    require_matching_inputs = models.JSONField(default=list, blank=True)
    description = models.CharField(max_length=255, blank=True)
    parameter = models.JSONField(default=dict, blank=True)

    # Where it stands (from our own requests and Twilio's callbacks).
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CREATED)
    capturing_field = models.CharField(max_length=32, blank=True)
    required_fields = models.JSONField(default=list, blank=True)
    last_error_type = models.CharField(max_length=64, blank=True)

    # Masked values only: Twilio never sends card data in clear, and the tripwire masks any.
    card_number_masked = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_type = models.CharField(max_length=32, blank=True)
    card_expiration = models.CharField(max_length=4, blank=True, help_text="MMYY")
    postal_code_value = models.CharField(max_length=16, blank=True)
    bank_routing_number = models.CharField(max_length=16, blank=True)
    bank_account_last2 = models.CharField(max_length=2, blank=True)

    # The outcome.
    result = models.CharField(max_length=40, blank=True)
    payment_confirmation_code = models.CharField(max_length=255, blank=True, db_index=True)
    payment_token = models.CharField(max_length=255, blank=True)
    profile_id = models.CharField(max_length=255, blank=True)
    pay_error_code = models.CharField(max_length=16, blank=True)
    payment_error = models.TextField(blank=True)
    connector_error = models.TextField(blank=True)
    twilio_error_code = models.CharField(max_length=16, blank=True, help_text="Last REST error from Twilio.")
    twilio_error_message = models.TextField(blank=True)

    started_by_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_activity_at = models.DateTimeField(auto_now_add=True, help_text="Last request or callback; drives expiry.")
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"], name="pay_session_idempotency_per_tenant"),
            models.CheckConstraint(
                condition=models.Q(amount_minor__isnull=True) | models.Q(amount_minor__gt=0),
                name="pay_session_amount_positive",
            ),
        ]
        indexes = [
            # Lists within a tenant, newest first (the API's cursor, the admin's pages): the
            # default ordering, and the same order under each filter of the list, so that a
            # page reads its rows off one index whatever the tenant's size (bench/scale.py).
            models.Index(fields=["tenant", "-created_at", "-id"], name="pay_session_tenant_newest"),
            models.Index(fields=["tenant", "status", "-created_at", "-id"], name="pay_session_tenant_status"),
            models.Index(fields=["tenant", "connector", "-created_at", "-id"], name="pay_session_tenant_connector"),
            models.Index(fields=["tenant", "channel", "-created_at", "-id"], name="pay_session_tenant_channel"),
            models.Index(fields=["tenant", "result", "-created_at", "-id"], name="pay_session_tenant_result"),
            # Searches by what is not unique across tenants: a card's last 4, an IVR payment
            # reference. (UUIDs, SIDs and confirmation codes have their own column's index.)
            models.Index(fields=["tenant", "card_last4", "-created_at", "-id"], name="pay_session_tenant_last4"),
            models.Index(F("tenant"), KeyTextTransform("reference", "parameter"), name="pay_session_tenant_reference"),
            # Expiry: open sessions with no news (pay_sessions_expire).
            models.Index(fields=["status", "last_activity_at"], name="payments_pa_status_f27c01_idx"),
        ]

    def __str__(self) -> str:
        # The id the API, the simulators and the logs print, whatever the channel.
        return f"{self.uuid} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def is_tokenization(self) -> bool:
        return self.amount_minor is None


class PayEvent(models.Model):
    """Append-only record of everything exchanged with Twilio for a session: each
    inbound callback (redacted, with a content key so a duplicate is recognised) and
    each outbound request with its response."""

    class Direction(models.TextChoices):
        INBOUND = "in"
        OUTBOUND = "out"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    session = models.ForeignKey(PaySession, on_delete=models.PROTECT, related_name="events")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    kind = models.CharField(max_length=32, help_text="status-callback, action, create, capture, complete, cancel")
    dedupe_key = models.CharField(max_length=64)
    idempotency_key = models.CharField(max_length=255, blank=True)
    payload = models.JSONField(default=dict)
    response = models.JSONField(default=dict, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=16, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True, help_text="Twilio's DateUpdated/DateCreated.")
    received_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    late = models.BooleanField(default=False, help_text="Arrived after the session had ended; kept, not applied.")

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [models.UniqueConstraint(fields=["session", "dedupe_key"], name="pay_event_unique_per_session")]
        indexes = [
            # What the applier looks for: stored callbacks not applied yet (a few at most).
            models.Index(
                fields=["session", "received_at"],
                condition=models.Q(applied_at__isnull=True, direction="in"),
                name="pay_event_unapplied",
            )
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.kind} {self.received_at:%H:%M:%S}"
