import uuid

from django.db import models
from django.utils import timezone

from tenants.models import Tenant


class Event(models.Model):
    """Something partners can be told about, recorded in the same transaction as the
    change it describes: a change is never committed without its event, nor an event
    without its change (payments.outbox.services.events_record).

    `payload` is the exact JSON body every delivery of the event sends,
    `{"type", "timestamp", "data"}` (Standard Webhooks), with `data` the object as the
    REST API shows it at that moment. It is stored as text so that every delivery, retry
    and endpoint gets the same bytes, in the serializer's key order."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=64)
    # Events with the same key are delivered to an endpoint in the order they were
    # recorded (e.g. "pay_session:<uuid>"); empty: no order is promised.
    ordering_key = models.CharField(max_length=100, blank=True)
    payload = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Set once the partner webhooks app has made its deliveries (fan-out).
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="outbox_event_tenant_created"),
            # What the dispatcher looks for: events not fanned out yet (a few at most).
            models.Index(
                fields=["id"], condition=models.Q(dispatched_at__isnull=True), name="outbox_event_undispatched"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.public_id}"

    @property
    def public_id(self) -> str:
        """The id partners see, in the API and as the `webhook-id` header."""
        return f"evt_{self.uuid.hex}"
