import uuid

from django.core.validators import RegexValidator
from django.db import models

from tenants.crypto import EncryptedSecretField
from tenants.models import Tenant

# Twilio's Console allows letters, digits, underscores and dashes in a connector's unique name.
unique_name_validator = RegexValidator(
    r"^[A-Za-z0-9_-]{1,64}\Z", "Use up to 64 letters, digits, underscores or dashes, exactly as in the Twilio Console."
)


class ConnectorInstance(models.Model):
    """A Pay Connector instance installed in the tenant's Twilio Console.

    Twilio has no API to list connector instances, so Paydesk keeps its own record, by
    the Console's `unique_name`, with the Stripe credentials that let Paydesk reconcile.
    """

    class Provider(models.TextChoices):
        STRIPE = "stripe", "Stripe"

    class Environment(models.TextChoices):
        PRODUCTION = "production"
        STAGING = "staging"
        DEVELOPMENT = "development"

    class Mode(models.TextChoices):
        LIVE = "live"
        TEST = "test"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="connectors")
    unique_name = models.CharField(max_length=64, validators=[unique_name_validator])
    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.STRIPE)
    environment = models.CharField(max_length=16, choices=Environment.choices)
    mode = models.CharField(max_length=8, choices=Mode.choices)
    stripe_secret_key_ciphertext = EncryptedSecretField(editable=False)
    stripe_secret_key_last4 = models.CharField(max_length=4, editable=False)
    stripe_webhook_secret_ciphertext = EncryptedSecretField(editable=False, blank=True)
    stripe_webhook_secret_last4 = models.CharField(max_length=4, editable=False, blank=True)
    is_active = models.BooleanField(default=True)
    notes = models.TextField(blank=True)
    last_verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_verify_attempt_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_verify_error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "unique_name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "unique_name"], name="connector_unique_name_per_tenant"),
            # The live/test guard, in the database too: production is live, the rest is test.
            models.CheckConstraint(
                condition=models.Q(environment="production", mode="live")
                | models.Q(environment__in=["staging", "development"], mode="test"),
                name="connector_environment_matches_mode",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.unique_name} ({self.environment})"

    def stripe_dashboard_url(self, object_id: str) -> str:
        """An object of this connector's Stripe account in Stripe's dashboard (test or live)."""
        return stripe_dashboard_url(mode=self.mode, object_id=object_id)

    @property
    def verify_status(self) -> str:
        if self.last_verify_attempt_at is None:
            return "never"
        return "failed" if self.last_verify_error else "ok"


_DASHBOARD_PATHS = {
    "pi_": "payments",
    "ch_": "payments",
    "py_": "payments",
    "re_": "refunds",
    "dp_": "disputes",
    "du_": "disputes",
    "po_": "payouts",
    "cus_": "customers",
}


def stripe_dashboard_url(*, mode: str, object_id: str) -> str:
    """The object in the Stripe dashboard; test-mode objects live under /test/."""
    if not object_id:
        return ""
    base = "https://dashboard.stripe.com/" + ("test/" if mode != "live" else "")
    path = next((p for prefix, p in _DASHBOARD_PATHS.items() if object_id.startswith(prefix)), None)
    if path is None:
        return f"{base}search?query={object_id}"
    return f"{base}{path}/{object_id}"
