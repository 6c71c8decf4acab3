"""Every write to webhook endpoints and to the delivery log that a person or partner
asks for: create, update, delete, rotate the secret, send a test, retry a delivery.
The delivery machinery itself is in delivery.py."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config.errors import Conflict
from payments.outbox import catalogue
from payments.outbox.services import NewEvent, events_record
from payments.partner_webhooks import network, signing
from payments.partner_webhooks.models import WebhookDelivery, WebhookEndpoint
from tenants import crypto
from tenants.models import Tenant
from tenants.services import Actor, audit_record

_UPDATABLE = ("url", "description", "event_types", "enabled")


def _check_url(url: str) -> None:
    try:
        WebhookEndpoint._meta.get_field("url").run_validators(url)
        network.check_url(url)
    except ValidationError as exc:
        raise ValidationError({"url": exc.messages}) from None
    except network.UrlRefused as exc:
        raise ValidationError({"url": [str(exc)]}) from None


def _check_event_types(event_types, *, scopes: list[str] | None) -> list[str]:
    """A list of known types without repeats ([] means all). With `scopes` (an API key's),
    each type must be readable with them: an endpoint carries the data of its events,
    so it cannot be a way round the key's scopes. "All" then needs every read scope."""
    if not isinstance(event_types, list) or not all(isinstance(t, str) for t in event_types):
        raise ValidationError({"event_types": ["Give a list of event types ([] for all)."]})
    unknown = [t for t in event_types if t not in catalogue.EVENT_TYPES]
    if unknown:
        raise ValidationError(
            {"event_types": [f"Unknown: {', '.join(unknown)}. Choose from {', '.join(catalogue.SUBSCRIBABLE)}."]}
        )
    if scopes is not None:
        needed = {catalogue.read_scope(t) for t in (event_types or catalogue.SUBSCRIBABLE)}
        missing = sorted(s for s in needed if s not in scopes)
        if missing:
            raise ValidationError(
                {
                    "event_types": [
                        f"This API key may not read {', '.join(missing)}: choose only event types it may read"
                        + (" (all event types need every read scope)." if not event_types else ".")
                    ]
                }
            )
    return list(dict.fromkeys(event_types))


def _set_secret(endpoint: WebhookEndpoint, secret: str) -> None:
    endpoint.secret_ciphertext = crypto.encrypt(secret)
    endpoint.secret_last4 = crypto.last4(secret)


def webhook_endpoint_create(
    *,
    tenant: Tenant,
    url: str,
    actor: Actor,
    description: str = "",
    event_types: list[str] | None = None,
    enabled: bool = True,
    scopes: list[str] | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns it with its signing secret, which is never shown again.
    `scopes`: the creating API key's, which bound the event types it may choose."""
    errors: dict[str, list[str]] = {}
    try:
        _check_url(url)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        event_types = _check_event_types(event_types or [], scopes=scopes)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        tenant=tenant, url=url, description=(description or "").strip(), event_types=event_types, enabled=enabled
    )
    _set_secret(endpoint, secret)
    endpoint.full_clean(exclude=["tenant", "secret_ciphertext"])
    with transaction.atomic():
        endpoint.save()
        audit_record(
            action="webhook_endpoint.created",
            actor=actor,
            tenant=tenant,
            target=endpoint,
            changes={"url": url, "event_types": event_types or "all", "secret": f"…{endpoint.secret_last4}"},
        )
    return endpoint, secret


def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, actor: Actor, scopes: list[str] | None = None, **fields
) -> WebhookEndpoint:
    """Change an endpoint. Everything is checked before anything is written. Enabling a
    disabled endpoint starts it afresh: its failure streak is forgotten."""
    unknown = set(fields) - set(_UPDATABLE)
    if unknown:
        raise ValueError(f"webhook_endpoint_update cannot change {sorted(unknown)}")
    if "url" in fields:
        _check_url(fields["url"])
    if "event_types" in fields:
        fields["event_types"] = _check_event_types(fields["event_types"] or [], scopes=scopes)
    if "description" in fields:
        fields["description"] = (fields["description"] or "").strip()
    with transaction.atomic():
        current = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        changes = {k: [getattr(current, k), v] for k, v in fields.items() if getattr(current, k) != v}
        for key, value in fields.items():
            setattr(current, key, value)
        if changes.get("enabled") == [False, True]:
            current.failing_since, current.disabled_reason = None, ""
        current.full_clean(exclude=["tenant", "secret_ciphertext"])
        current.save()
        if changes:
            audit_record(
                action="webhook_endpoint.updated", actor=actor, tenant=current.tenant, target=current, changes=changes
            )
    return current


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    """Delete an endpoint and its delivery log."""
    with transaction.atomic():
        audit_record(
            action="webhook_endpoint.deleted",
            actor=actor,
            tenant=endpoint.tenant,
            target=endpoint,
            changes={"url": endpoint.url},
        )
        endpoint.delete()


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor: Actor, now=None) -> tuple[WebhookEndpoint, str]:
    """A new signing secret, returned once. The one it replaces keeps signing beside it
    for PAYDESK_WEBHOOKS_SECRET_OVERLAP_SECONDS, so the receiver can switch without
    losing a message; a secret older than that is dropped."""
    now = now or timezone.now()
    secret = signing.new_secret()
    with transaction.atomic():
        current = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        old_last4 = current.secret_last4
        current.previous_secret_ciphertext = current.secret_ciphertext
        current.previous_secret_expires_at = now + timedelta(seconds=settings.PAYDESK_WEBHOOKS_SECRET_OVERLAP_SECONDS)
        _set_secret(current, secret)
        current.save()
        audit_record(
            action="webhook_endpoint.secret_rotated",
            actor=actor,
            tenant=current.tenant,
            target=current,
            changes={
                "was": f"…{old_last4}",
                "now": f"…{current.secret_last4}",
                "old_signs_until": current.previous_secret_expires_at.isoformat(),
            },
        )
    return current, secret


def webhook_endpoint_signing_secrets(*, endpoint: WebhookEndpoint, now=None) -> list[str]:
    """The secrets that sign now: the current one, then the previous one in its overlap."""
    now = now or timezone.now()
    found = [crypto.decrypt(endpoint.secret_ciphertext)]
    overlap_until = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_ciphertext and overlap_until and overlap_until > now:
        found.append(crypto.decrypt(endpoint.previous_secret_ciphertext))
    return found


def webhook_endpoint_send_test(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookDelivery:
    """A `ping` event for this endpoint only, delivered like any other (refused while
    the endpoint is disabled)."""
    _ensure_enabled(endpoint)
    with transaction.atomic():
        (event,) = events_record(
            [
                NewEvent(
                    tenant_id=endpoint.tenant_id,
                    type=catalogue.PING,
                    data={"endpoint": str(endpoint.uuid), "message": "A test event from Paydesk."},
                )
            ],
            fan_out=False,
        )
        delivery = WebhookDelivery.objects.create(
            tenant_id=endpoint.tenant_id, endpoint=endpoint, event=event, next_attempt_at=event.created_at
        )
        audit_record(action="webhook_endpoint.test_sent", actor=actor, tenant=endpoint.tenant, target=endpoint)
    _send_soon(endpoint)
    return delivery


def webhook_delivery_retry(*, delivery: WebhookDelivery, actor: Actor) -> WebhookDelivery:
    """Send a finished delivery again (failed, or succeeded and wanted once more), with a
    fresh retry window. It is sent out of its order: later events may have gone already."""
    _ensure_enabled(delivery.endpoint)
    now = timezone.now()
    with transaction.atomic():
        retried = (
            WebhookDelivery.objects.filter(pk=delivery.pk)
            .exclude(status=WebhookDelivery.Status.PENDING)
            .update(
                status=WebhookDelivery.Status.PENDING,
                next_attempt_at=now,
                first_attempt_at=None,
                completed_at=None,
            )
        )
        if not retried:
            raise Conflict("This delivery is already pending.", code="delivery_pending")
        audit_record(
            action="webhook_delivery.retried",
            actor=actor,
            tenant=delivery.endpoint.tenant,
            target=delivery,
            changes={"event": delivery.event_id, "status_was": delivery.status},
        )
    delivery.refresh_from_db()
    _send_soon(delivery.endpoint)
    return delivery


def _ensure_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise Conflict(
            "This endpoint is disabled; enable it first.", code="endpoint_disabled", fields={"enabled": [False]}
        )


def _send_soon(endpoint: WebhookEndpoint) -> None:
    from payments.partner_webhooks.tasks import send_webhooks

    transaction.on_commit(lambda: send_webhooks.delay(endpoint.tenant_id, endpoint.pk))
