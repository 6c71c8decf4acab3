import uuid
import zoneinfo

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from core.money import validate_currency
from tenants.crypto import EncryptedSecretField

twilio_account_sid_validator = RegexValidator(
    r"^AC[0-9a-fA-F]{32}\Z", "Enter a Twilio Account SID: AC followed by 32 hexadecimal characters."
)
twilio_auth_token_validator = RegexValidator(
    r"^[0-9a-fA-F]{32}\Z", "Enter a Twilio auth token: 32 hexadecimal characters."
)


def validate_time_zone(value: str) -> None:
    from django.core.exceptions import ValidationError

    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/London.")


class Tenant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    twilio_account_sid = models.CharField(max_length=34, validators=[twilio_account_sid_validator])
    twilio_auth_token_ciphertext = EncryptedSecretField(editable=False)
    twilio_auth_token_last4 = models.CharField(max_length=4, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    default_currency = models.CharField(max_length=3, default="USD", validators=[validate_currency])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=["active", "suspended"]), name="tenant_status_valid"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Role(models.TextChoices):
    OWNER = "owner"
    ADMIN = "admin"
    AGENT = "agent"
    FINANCE = "finance"
    VIEWER = "viewer"


# Roles that may change tenant configuration (connectors, API keys, memberships).
MANAGER_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user_per_tenant")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class Scope(models.TextChoices):
    TENANT_READ = "tenant:read"
    CONNECTORS_READ = "connectors:read"
    CONNECTORS_WRITE = "connectors:write"
    PAYMENTS_READ = "payments:read"
    PAYMENTS_WRITE = "payments:write"
    # Sends money back to a caller: granted on its own, never implied by payments:write.
    PAYMENTS_REFUND = "payments:refund"
    RECONCILIATION_READ = "reconciliation:read"
    REPORTS_READ = "reports:read"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"


# What a key gets when its creator names no scope: what a partner app taking payments needs.
DEFAULT_SCOPES = [Scope.TENANT_READ, Scope.CONNECTORS_READ, Scope.PAYMENTS_READ, Scope.PAYMENTS_WRITE]


class ApiKey(models.Model):
    """A partner app's credential. Only a SHA-256 of the key is stored; the key is
    shown once, at creation. The visible prefix identifies it in lists and logs."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class AuditEvent(models.Model):
    """Append-only record of a security-relevant action. Never holds a secret.

    Rows are never updated or deleted: the admin is read-only and a
    trigger (migration 0002) refuses UPDATE and DELETE outright.
    """

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # No database constraint: deleting a user or key must not touch the append-only log;
    # the id stays as evidence and `actor` keeps the readable name.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    actor = models.CharField(max_length=200, help_text="Who acted, as text that survives the actor's deletion.")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The admin list within a tenant: newest first, by action, by actor (a prefix),
            # by target. Superusers' list across tenants reads created_at's own index.
            models.Index(fields=["tenant", "-created_at", "-id"], name="audit_tenant_newest"),
            models.Index(fields=["tenant", "action", "-created_at", "-id"], name="audit_tenant_action"),
            models.Index(
                fields=["tenant", "actor"], name="audit_tenant_actor", opclasses=["int8_ops", "varchar_pattern_ops"]
            ),
            models.Index(fields=["tenant", "target_id"], name="audit_tenant_target"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target_repr}"
