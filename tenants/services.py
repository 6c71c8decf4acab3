"""Every write to tenants, memberships, API keys and the audit log."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tenants import crypto
from tenants.models import DEFAULT_SCOPES, ApiKey, AuditEvent, Membership, Role, Scope, Tenant


@dataclass(frozen=True)
class Actor:
    """Who performs an action: an admin user, a partner's API key, or the system (CLI, tasks)."""

    label: str
    user: object | None = None
    api_key: ApiKey | None = None
    ip_address: str | None = None

    @classmethod
    def for_user(cls, user, ip_address: str | None = None) -> "Actor":
        return cls(label=f"user:{user.get_username()}", user=user, ip_address=ip_address)

    @classmethod
    def for_api_key(cls, api_key: ApiKey, ip_address: str | None = None) -> "Actor":
        return cls(label=f"api_key:{api_key.prefix}", api_key=api_key, ip_address=ip_address)

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(label=label)


# --- Audit ----------------------------------------------------------------------------


def audit_record(
    *,
    action: str,
    actor: Actor,
    tenant: Tenant | None = None,
    target=None,
    changes: dict | None = None,
) -> AuditEvent:
    """Append one audit event. `changes` must never hold a secret: callers pass field
    names and non-secret values only (a replaced secret is recorded by its last 4)."""
    return AuditEvent.objects.create(
        tenant=tenant,
        actor_user=actor.user if getattr(actor.user, "pk", None) else None,
        actor_api_key=actor.api_key,
        actor=actor.label[:200],
        action=action,
        target_type=target._meta.label if target is not None else "",
        target_id=str(getattr(target, "uuid", None) or getattr(target, "pk", "")) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        changes=changes or {},
        ip_address=actor.ip_address,
    )


def _member_tenants(user) -> list[Tenant | None]:
    """The tenants whose audit log shows a login of `user`: each of its memberships', or
    none (a superuser's, an unknown name's: only superusers see those)."""
    tenants = list(Tenant.objects.filter(memberships__user=user).order_by("pk")) if user is not None else []
    return tenants or [None]


def audit_login(*, user, actor: Actor) -> None:
    """An admin login, in the audit log of each tenant the user is a member of."""
    for tenant in _member_tenants(user):
        audit_record(action="admin.login", actor=actor, tenant=tenant, target=user)


def audit_login_failed(*, username: str, actor: Actor) -> None:
    """A failed admin login, in the audit log of each tenant the named user is a member
    of, so that a tenant's owner sees attempts on their own people."""
    user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first() if username else None
    for tenant in _member_tenants(user):
        audit_record(action="admin.login_failed", actor=actor, tenant=tenant, changes={"username": username})


# --- Tenants --------------------------------------------------------------------------


def tenant_create(
    *,
    slug: str,
    name: str,
    twilio_account_sid: str,
    twilio_auth_token: str,
    time_zone: str = "UTC",
    default_currency: str = "USD",
    actor: Actor,
) -> Tenant:
    tenant = Tenant(
        slug=slug,
        name=name,
        twilio_account_sid=twilio_account_sid,
        time_zone=time_zone,
        default_currency=default_currency,
    )
    errors: dict[str, list[str]] = {}
    for check in (
        lambda: _set_auth_token(tenant, twilio_auth_token),
        lambda: tenant.full_clean(exclude=["twilio_auth_token_ciphertext", "twilio_auth_token_last4"]),
    ):
        try:
            check()
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        tenant.save()
        audit_record(
            action="tenant.created",
            actor=actor,
            tenant=tenant,
            target=tenant,
            changes={"slug": slug, "twilio_account_sid": twilio_account_sid},
        )
    return tenant


def _set_auth_token(tenant: Tenant, token: str) -> None:
    from tenants.models import twilio_auth_token_validator

    try:
        twilio_auth_token_validator(token)
    except ValidationError as exc:
        raise ValidationError({"twilio_auth_token": exc.messages}) from None
    tenant.twilio_auth_token_ciphertext = crypto.encrypt(token)
    tenant.twilio_auth_token_last4 = crypto.last4(token)


def tenant_update(*, tenant: Tenant, actor: Actor, twilio_auth_token: str | None = None, **fields) -> Tenant:
    """Change a tenant's settings; a new auth token replaces the stored one."""
    allowed = {"name", "twilio_account_sid", "time_zone", "default_currency"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"tenant_update cannot change {sorted(unknown)}")
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        changes = {k: [getattr(tenant, k), v] for k, v in fields.items() if getattr(tenant, k) != v}
        for key, value in fields.items():
            setattr(tenant, key, value)
        if twilio_auth_token:
            _set_auth_token(tenant, twilio_auth_token)
            changes["twilio_auth_token"] = f"replaced (now …{tenant.twilio_auth_token_last4})"
        tenant.full_clean()
        tenant.save()
        if changes:
            audit_record(action="tenant.updated", actor=actor, tenant=tenant, target=tenant, changes=changes)
    return tenant


def tenant_set_status(*, tenant: Tenant, status: str, actor: Actor) -> Tenant:
    """Suspend or reactivate. Conditional update: a repeat does nothing and audits nothing."""
    if status not in Tenant.Status.values:
        raise ValidationError({"status": [f"Unknown status {status!r}."]})
    with transaction.atomic():
        changed = Tenant.objects.filter(pk=tenant.pk).exclude(status=status).update(status=status)
        tenant.refresh_from_db()
        if changed:
            action = "tenant.suspended" if status == Tenant.Status.SUSPENDED else "tenant.reactivated"
            audit_record(action=action, actor=actor, tenant=tenant, target=tenant)
    return tenant


def tenant_twilio_auth_token(*, tenant: Tenant) -> str:
    """The decrypted auth token, for a Twilio call or a signature check only."""
    return crypto.decrypt(tenant.twilio_auth_token_ciphertext)


def membership_set(*, tenant: Tenant, user, role: str, actor: Actor) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": [f"Unknown role {role!r}; choose one of {', '.join(Role.values)}."]})
    with transaction.atomic():
        membership, created = Membership.objects.update_or_create(tenant=tenant, user=user, defaults={"role": role})
        audit_record(
            action="membership.created" if created else "membership.updated",
            actor=actor,
            tenant=tenant,
            target=membership,
            changes={"user": user.get_username(), "role": role},
        )
    return membership


def membership_remove(*, membership: Membership, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(
            action="membership.deleted",
            actor=actor,
            tenant=membership.tenant,
            target=membership,
            changes={"user": membership.user.get_username(), "role": membership.role},
        )
        membership.delete()


# --- API keys -------------------------------------------------------------------------

API_KEY_PREFIX = "pdk_"


def _hash_key(raw_key: str) -> str:
    # The key is 256 bits of randomness, so a fast hash is enough (no password stretching).
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    scopes: list[str] | None = None,
    actor: Actor,
    raw_key: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with the clear key, which is never available again.

    `raw_key` lets `seed_demo` (DEBUG only) recreate its well-known demo key.
    """
    scopes = list(dict.fromkeys(scopes)) if scopes else [str(s) for s in DEFAULT_SCOPES]
    bad = [s for s in scopes if s not in Scope.values]
    if bad:
        raise ValidationError({"scopes": [f"Unknown scope {s!r}; choose from {', '.join(Scope.values)}." for s in bad]})
    if not name or not name.strip():
        raise ValidationError({"name": ["A name is required."]})
    raw_key = raw_key or f"{API_KEY_PREFIX}{secrets.token_hex(5)}_{secrets.token_urlsafe(32)}"
    prefix = raw_key[len(API_KEY_PREFIX) :].split("_", 1)[0]
    key = ApiKey(tenant=tenant, name=name.strip(), prefix=prefix, secret_hash=_hash_key(raw_key), scopes=scopes)
    key.created_by = actor.user if getattr(actor.user, "pk", None) else None
    key.full_clean(exclude=["prefix", "secret_hash"])
    with transaction.atomic():
        key.save()
        audit_record(
            action="api_key.created",
            actor=actor,
            tenant=tenant,
            target=key,
            changes={"name": key.name, "prefix": prefix, "scopes": scopes},
        )
    return key, raw_key


def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        api_key.refresh_from_db()
        if revoked:
            audit_record(action="api_key.revoked", actor=actor, tenant=api_key.tenant, target=api_key)
    return api_key


def api_key_resolve(*, raw_key: str) -> ApiKey | None:
    """The key a raw bearer token names, if it exists (revoked or not); touches last_used_at."""
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    prefix = raw_key[len(API_KEY_PREFIX) :].split("_", 1)[0]
    key = ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.secret_hash, _hash_key(raw_key)):
        return None
    now = timezone.now()
    stale = now - timedelta(seconds=settings.PAYDESK_API_KEY_TOUCH_SECONDS)
    if key.last_used_at is None or key.last_used_at < stale:
        # At most one write per key per interval, and never a lost update race.
        ApiKey.objects.filter(pk=key.pk).filter(
            **({"last_used_at__isnull": True} if key.last_used_at is None else {"last_used_at__lt": stale})
        ).update(last_used_at=now)
        key.last_used_at = now
    return key


# --- Encryption keys ------------------------------------------------------------------


def encryption_keys_rotate(*, actor: Actor, batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every EncryptedSecretField under the newest key. Safe to re-run."""
    counts: dict[str, int] = {}
    for model in apps.get_models():
        fields = [f.name for f in model._meta.concrete_fields if isinstance(f, crypto.EncryptedSecretField)]
        if not fields:
            continue
        done = 0
        pks = list(model.objects.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(pks), batch_size):
            with transaction.atomic():
                rows = list(model.objects.select_for_update().filter(pk__in=pks[start : start + batch_size]))
                for row in rows:
                    for name in fields:
                        value = getattr(row, name)
                        if value:
                            setattr(row, name, crypto.rotate(value))
                model.objects.bulk_update(rows, fields)
                done += len(rows)
        counts[model._meta.label] = done
    audit_record(action="encryption.rotated", actor=actor, changes={"rows": counts})
    return counts
