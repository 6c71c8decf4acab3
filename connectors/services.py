"""Every write to connector instances, with the live/test guard."""

import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from connectors import stripe as stripe_edge
from connectors.base import ConnectorError
from connectors.models import ConnectorInstance
from tenants import crypto
from tenants.models import Tenant
from tenants.services import Actor, audit_record

Env = ConnectorInstance.Environment
Mode = ConnectorInstance.Mode

MODE_FOR_ENVIRONMENT = {Env.PRODUCTION: Mode.LIVE, Env.STAGING: Mode.TEST, Env.DEVELOPMENT: Mode.TEST}
_KEY_PATTERN = re.compile(r"^(sk|rk)_(live|test)_[A-Za-z0-9]{8,}\Z")
_WEBHOOK_SECRET_PATTERN = re.compile(r"^whsec_[A-Za-z0-9_]{8,}\Z")


def connector_check_config(*, environment: str, mode: str | None, stripe_secret_key: str | None) -> str:
    """The live/test guard. Returns the mode; raises ValidationError naming each bad field.

    Production must be live mode with an sk_live_/rk_live_ key; staging and development
    must be test mode with sk_test_/rk_test_ keys. A missing mode follows the environment.
    `stripe_secret_key=None` means "keep the stored key" (checked by the caller).
    """
    errors: dict[str, list[str]] = {}
    if environment not in Env.values:
        errors["environment"] = [f"Unknown environment {environment!r}; choose one of {', '.join(Env.values)}."]
        raise ValidationError(errors)
    expected = MODE_FOR_ENVIRONMENT[environment]
    mode = mode or expected
    if mode not in Mode.values:
        errors["mode"] = [f"Unknown mode {mode!r}; choose live or test."]
    elif mode != expected:
        errors["mode"] = [f"A {environment} connector must be in {expected} mode, not {mode}."]
    if stripe_secret_key is not None:
        match = _KEY_PATTERN.match(stripe_secret_key)
        if not match:
            errors["stripe_secret_key"] = [
                "Enter a Stripe secret key (sk_live_…, sk_test_…) or restricted key (rk_live_…, rk_test_…)."
            ]
        elif match.group(2) != expected:
            errors["stripe_secret_key"] = [
                f"A {environment} connector needs a {expected}-mode key ({match.group(1)}_{expected}_…), "
                f"not a {match.group(2)}-mode key."
            ]
    if errors:
        raise ValidationError(errors)
    return mode


def _check_webhook_secret(value: str) -> None:
    if not _WEBHOOK_SECRET_PATTERN.match(value):
        raise ValidationError({"stripe_webhook_secret": ["Enter a Stripe webhook signing secret (whsec_…)."]})


def _set_secret(connector: ConnectorInstance, field: str, value: str) -> None:
    setattr(connector, f"{field}_ciphertext", crypto.encrypt(value))
    setattr(connector, f"{field}_last4", crypto.last4(value))


def _check_unique_name(*, tenant: Tenant, unique_name: str, exclude_pk: int | None = None) -> None:
    clash = ConnectorInstance.objects.filter(tenant=tenant, unique_name=unique_name)
    if exclude_pk:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ValidationError({"unique_name": [f"This tenant already has a connector named {unique_name!r}."]})


def connector_create(
    *,
    tenant: Tenant,
    unique_name: str,
    environment: str,
    stripe_secret_key: str,
    mode: str | None = None,
    provider: str = ConnectorInstance.Provider.STRIPE,
    stripe_webhook_secret: str = "",
    is_active: bool = True,
    notes: str = "",
    actor: Actor,
) -> ConnectorInstance:
    if not stripe_secret_key:
        raise ValidationError({"stripe_secret_key": ["A Stripe secret or restricted key is required."]})
    mode = connector_check_config(environment=environment, mode=mode, stripe_secret_key=stripe_secret_key)
    connector = ConnectorInstance(
        tenant=tenant,
        unique_name=unique_name,
        provider=provider,
        environment=environment,
        mode=mode,
        is_active=is_active,
        notes=notes,
    )
    _set_secret(connector, "stripe_secret_key", stripe_secret_key)
    if stripe_webhook_secret:
        _check_webhook_secret(stripe_webhook_secret)
        _set_secret(connector, "stripe_webhook_secret", stripe_webhook_secret)
    connector.full_clean(exclude=["tenant"], validate_unique=False, validate_constraints=False)
    _check_unique_name(tenant=tenant, unique_name=unique_name)
    with transaction.atomic():
        connector.save()
        audit_record(
            action="connector.created",
            actor=actor,
            tenant=tenant,
            target=connector,
            changes={
                "unique_name": unique_name,
                "environment": environment,
                "mode": mode,
                "stripe_secret_key": f"…{connector.stripe_secret_key_last4}",
            },
        )
    return connector


_UPDATABLE = ("unique_name", "environment", "mode", "is_active", "notes")


def connector_update(
    *,
    connector: ConnectorInstance,
    actor: Actor,
    stripe_secret_key: str | None = None,
    stripe_webhook_secret: str | None = None,
    **fields,
) -> ConnectorInstance:
    """Change a connector. A secret left as None (or empty) keeps the stored one.

    Everything is validated before anything is written: bad input changes nothing.
    """
    unknown = set(fields) - set(_UPDATABLE)
    if unknown:
        raise ValueError(f"connector_update cannot change {sorted(unknown)}")
    with transaction.atomic():
        current = ConnectorInstance.objects.select_for_update().get(pk=connector.pk)
        environment = fields.get("environment", current.environment)
        if fields.get("mode"):
            requested_mode = fields["mode"]
        elif "environment" in fields:
            requested_mode = None  # follow the new environment
        else:
            requested_mode = current.mode
        mode = connector_check_config(
            environment=environment, mode=requested_mode, stripe_secret_key=stripe_secret_key or None
        )
        fields["mode"] = mode
        if not stripe_secret_key and (environment, mode) != (current.environment, current.mode):
            # The stored key must still suit the environment it now serves.
            connector_check_config(
                environment=environment,
                mode=mode,
                stripe_secret_key=crypto.decrypt(current.stripe_secret_key_ciphertext),
            )
        if stripe_webhook_secret:
            _check_webhook_secret(stripe_webhook_secret)
        if "unique_name" in fields:
            unique_name_errors = []
            try:
                ConnectorInstance._meta.get_field("unique_name").run_validators(fields["unique_name"])
            except ValidationError as exc:
                unique_name_errors = exc.messages
            if unique_name_errors:
                raise ValidationError({"unique_name": unique_name_errors})
            _check_unique_name(tenant=current.tenant, unique_name=fields["unique_name"], exclude_pk=current.pk)

        changes = {k: [getattr(current, k), v] for k, v in fields.items() if getattr(current, k) != v}
        for key, value in fields.items():
            setattr(current, key, value)
        secrets_replaced = []
        if stripe_secret_key:
            _set_secret(current, "stripe_secret_key", stripe_secret_key)
            secrets_replaced.append("stripe_secret_key")
            # A new key has not been verified yet.
            current.last_verified_at = None
            current.last_verify_error = ""
            current.last_verify_attempt_at = None
        if stripe_webhook_secret:
            _set_secret(current, "stripe_webhook_secret", stripe_webhook_secret)
            secrets_replaced.append("stripe_webhook_secret")
        current.save()
        if changes:
            audit_record(
                action="connector.updated", actor=actor, tenant=current.tenant, target=current, changes=changes
            )
        for name in secrets_replaced:
            audit_record(
                action="connector.secret_replaced",
                actor=actor,
                tenant=current.tenant,
                target=current,
                changes={"secret": name, "now_ends_with": getattr(current, f"{name}_last4")},
            )
    return current


def connector_delete(*, connector: ConnectorInstance, actor: Actor) -> None:
    """Delete a connector; refused (ProtectedError → 409) while pay sessions reference it."""
    with transaction.atomic():
        audit_record(
            action="connector.deleted",
            actor=actor,
            tenant=connector.tenant,
            target=connector,
            changes={"unique_name": connector.unique_name},
        )
        connector.delete()


def connector_stripe_secret_key(*, connector: ConnectorInstance) -> str:
    """The decrypted key, for a Stripe call only."""
    return crypto.decrypt(connector.stripe_secret_key_ciphertext)


def connector_stripe_webhook_secret(*, connector: ConnectorInstance) -> str:
    if not connector.stripe_webhook_secret_ciphertext:
        return ""
    return crypto.decrypt(connector.stripe_webhook_secret_ciphertext)


def connector_verify(*, connector: ConnectorInstance, actor: Actor) -> ConnectorInstance:
    """Call Stripe with the stored key; record when it last worked or why it failed."""
    now = timezone.now()
    try:
        stripe_edge.verify_secret_key(connector_stripe_secret_key(connector=connector))
    except ConnectorError as exc:
        updates = {"last_verify_attempt_at": now, "last_verify_error": exc.message[:2000]}
        action, changes = "connector.verify_failed", {"error": exc.message[:500], "permanent": exc.permanent}
    else:
        updates = {"last_verify_attempt_at": now, "last_verified_at": now, "last_verify_error": ""}
        action, changes = "connector.verified", {}
    with transaction.atomic():
        ConnectorInstance.objects.filter(pk=connector.pk).update(**updates)
        audit_record(action=action, actor=actor, tenant=connector.tenant, target=connector, changes=changes)
    connector.refresh_from_db()
    return connector
