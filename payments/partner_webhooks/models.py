import uuid

from django.db import models

from payments.outbox.models import Event
from tenants.crypto import EncryptedSecretField
from tenants.models import Tenant


class WebhookEndpoint(models.Model):
    """A partner's URL that receives the tenant's events, signed with the endpoint's
    secret (Standard Webhooks). The secret is encrypted at rest and shown once: when the
    endpoint is created and when the secret is rotated. After a rotation the previous
    secret keeps signing, beside the new one, until `previous_secret_expires_at`."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=255, blank=True)
    event_types = models.JSONField(default=list, blank=True, help_text="Empty: every event type.")
    enabled = models.BooleanField(default=True)
    secret_ciphertext = EncryptedSecretField(editable=False)
    secret_last4 = models.CharField(max_length=4, editable=False)
    previous_secret_ciphertext = EncryptedSecretField(editable=False, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The first failed attempt since the last success; cleared by a success. Three days
    # of failures in a row disable the endpoint (PAYDESK_WEBHOOKS_DISABLE_AFTER_SECONDS).
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=255, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook endpoint"
        indexes = [models.Index(fields=["tenant", "-created_at"], name="webhook_endpoint_tenant")]

    def __str__(self) -> str:
        return self.url[:100]

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookDelivery(models.Model):
    """One event for one endpoint: pending until the endpoint answers 2xx (succeeded) or
    the retries run out (failed). The log keeps the last attempt's outcome."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    # The event's, copied: deliveries of one key go to an endpoint one at a time, in order.
    ordering_key = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When the next attempt is due; while an attempt is under way, when it is given up
    # for lost (a worker that died), so that the sweep tries again.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response_body = models.TextField(blank=True, help_text="The first bytes only (masked).")
    last_error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once_per_endpoint"),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "succeeded", "failed"]), name="webhook_delivery_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_log"),
            # What the sender looks for: pending deliveries, by endpoint and order.
            models.Index(
                fields=["endpoint", "ordering_key", "event"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_pending",
            ),
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="webhook_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"
