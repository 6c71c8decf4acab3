"""Every write the console makes. Each agent action is the pay-session service the REST
API calls (payments.sessions.services), audited here with the agent as actor; the
console adds only its own records: settings and one-time links."""

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from config.errors import Conflict
from connectors.models import ConnectorInstance
from payments.console.models import ConsoleLink, ConsoleSettings
from payments.sessions import services as sessions
from payments.sessions.models import PaySession
from tenants.models import ApiKey, Tenant
from tenants.services import Actor, audit_record

Status = PaySession.Status


# --- Pay-session actions --------------------------------------------------------------


def console_session_start(
    *,
    tenant: Tenant,
    connector: ConnectorInstance,
    request: sessions.SessionRequest,
    idempotency_key: str | None,
    actor: Actor,
) -> PaySession:
    """Start a session on the call. The form's idempotency key makes a double submit
    return the same session."""
    session, created = sessions.pay_session_start(
        tenant=tenant, connector=connector, request=request, idempotency_key=idempotency_key, actor=actor
    )
    if created:
        _audit("console.session_started", session, actor, connector=connector.unique_name)
    return session


def console_capture(*, session: PaySession, field: str, idempotency_key: str | None, actor: Actor) -> PaySession:
    session = sessions.pay_session_capture(session=session, field=field, idempotency_key=idempotency_key, actor=actor)
    _audit("console.capture_requested", session, actor, field=field)
    return session


def console_complete(*, session: PaySession, actor: Actor) -> PaySession:
    session = sessions.pay_session_complete(session=session, idempotency_key=None, actor=actor)
    _audit("console.complete_requested", session, actor)
    return session


def console_cancel(*, session: PaySession, actor: Actor) -> PaySession:
    # The service audits the cancellation itself ("pay_session.cancelled"), with this actor.
    return sessions.pay_session_cancel(session=session, actor=actor)


def console_retry(*, session: PaySession, actor: Actor) -> PaySession:
    """ "Try another card" after a failed payment: a new session on the same call with the
    same request. Twilio's Payments resource is finished once a complete has been
    processed (later updates are refused with 64021), so capture cannot restart on it.
    The key is derived from the failed session, so a repeated click gives the same new
    session."""
    if session.status != Status.FAILED:
        raise Conflict(
            "Only a failed payment can be tried again with another card.",
            code="not_failed",
            fields={"status": [session.status]},
        )
    request = sessions.SessionRequest(
        call_sid=session.call_sid,
        amount_minor=session.amount_minor,
        currency=session.currency,
        payment_method=session.payment_method,
        token_type=session.token_type,
        postal_code=session.postal_code,
        security_code=session.security_code,
        min_postal_code_length=session.min_postal_code_length,
        valid_card_types=session.valid_card_types,
        timeout=session.timeout,
        bank_account_type=session.bank_account_type,
        confirmation=session.confirmation,
        require_matching_inputs=tuple(session.require_matching_inputs),
        description=session.description,
        parameter=tuple(sorted(session.parameter.items())),
    )
    retry, created = sessions.pay_session_start(
        tenant=session.tenant,
        connector=session.connector,
        request=request,
        idempotency_key=retry_key(session),
        actor=actor,
    )
    if created:
        _audit("console.retry_started", retry, actor, previous=str(session.uuid))
    return retry


def retry_key(session: PaySession) -> str:
    return f"console-retry:{session.uuid}"


def _audit(action: str, session: PaySession, actor: Actor, **changes) -> None:
    audit_record(action=action, actor=actor, tenant=session.tenant, target=session, changes=changes)


# --- Settings -------------------------------------------------------------------------

SETTINGS_FIELDS = ("frame_origins", "allow_tokenize", "allow_ach", "allow_skip_security_code", "allow_skip_postal_code")


def console_settings_update(*, tenant: Tenant, actor: Actor, **fields) -> ConsoleSettings:
    unknown = set(fields) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"console_settings_update cannot change {sorted(unknown)}")
    with transaction.atomic():
        row, _ = ConsoleSettings.objects.select_for_update().get_or_create(tenant=tenant)
        changes = {k: [getattr(row, k), v] for k, v in fields.items() if getattr(row, k) != v}
        for key, value in fields.items():
            setattr(row, key, value)
        row.full_clean()
        row.save()
        if changes:
            audit_record(action="console.settings_updated", actor=actor, tenant=tenant, target=row, changes=changes)
    return row


# --- One-time links for the embedded console -------------------------------------------


def _hash(secret: str) -> str:
    # 256 bits of randomness: a fast hash is enough, as for API keys.
    return hashlib.sha256(secret.encode()).hexdigest()


def console_link_create(
    *, session: PaySession, api_key: ApiKey | None, agent_reference: str, actor: Actor
) -> tuple[ConsoleLink, str]:
    """A one-time link to the session's console page; returns it with its absolute URL
    (the only time the secret exists outside the caller's hands)."""
    secret = secrets.token_urlsafe(32)
    link = ConsoleLink.objects.create(
        tenant=session.tenant,
        session=session,
        secret_hash=_hash(secret),
        api_key=api_key,
        agent_reference=agent_reference.strip()[:100],
        expires_at=timezone.now() + timedelta(seconds=settings.PAYDESK_CONSOLE_LINK_SECONDS),
    )
    audit_record(
        action="console.link_created",
        actor=actor,
        tenant=session.tenant,
        target=session,
        changes={"link": str(link.uuid), "agent_reference": link.agent_reference},
    )
    url = settings.PAYDESK_PUBLIC_BASE_URL + reverse("console:embed-open", kwargs={"secret": secret})
    return link, url


class LinkRefused(Exception):
    """The link is unknown, used, expired, or its key or tenant no longer allowed."""

    def __init__(self, message: str, link: ConsoleLink | None = None):
        super().__init__(message)
        self.message, self.link = message, link


def console_link_redeem(*, secret: str, ip_address: str | None = None) -> ConsoleLink:
    """Use the link, once: a conditional update, so two opens racing give one page."""
    link = ConsoleLink.objects.select_related("tenant", "api_key", "session").filter(secret_hash=_hash(secret)).first()
    if link is None:
        raise LinkRefused("This console link is not valid.")
    now = timezone.now()
    used = ConsoleLink.objects.filter(pk=link.pk, used_at__isnull=True, expires_at__gt=now).update(used_at=now)
    if not used:
        if link.used_at is not None or ConsoleLink.objects.filter(pk=link.pk, used_at__isnull=False).exists():
            raise LinkRefused("This console link was already used. Ask your software for a new one.", link)
        raise LinkRefused("This console link has expired. Ask your software for a new one.", link)
    _check_grantor(link)
    audit_record(
        action="console.link_opened",
        actor=link_actor(link, ip_address=ip_address),
        tenant=link.tenant,
        target=link.session,
        changes={"link": str(link.uuid)},
    )
    return link


def _check_grantor(link: ConsoleLink) -> None:
    if link.api_key is None or link.api_key.is_revoked:
        raise LinkRefused("The API key that made this console link has been revoked.", link)
    if not link.tenant.is_active:
        raise LinkRefused("This account is suspended.", link)


def link_actor(link: ConsoleLink, ip_address: str | None = None) -> Actor:
    """The agent of an embedded page: known to Paydesk only by the partner's reference,
    vouched for by the API key that made the link."""
    prefix = link.api_key.prefix if link.api_key else "-"
    agent = link.agent_reference or "unnamed agent"
    return Actor(label=f"console-link:{agent} (api_key:{prefix})", api_key=link.api_key, ip_address=ip_address)


# --- The embedded page's own token ------------------------------------------------------
#
# Third-party cookies are blocked in frames, so the embedded page carries a signed token
# (django.core.signing) naming its link and its session; the page sends it in a header on
# every request. It lives PAYDESK_CONSOLE_PAGE_TOKEN_SECONDS and is renewed by the polls
# while the page is open, so a page left behind stops working soon after.

PAGE_TOKEN_SALT = "paydesk.console.page-token"  # noqa: S105 - a signing namespace, not a secret
PAGE_TOKEN_HEADER = "X-Console-Token"  # noqa: S105 - a header name


@dataclass(frozen=True)
class PageGrant:
    link: ConsoleLink
    session_uuid: str
    issued_at: int
    # False once the link's API key is revoked or its tenant suspended: the page may still
    # show its session until its token runs out, but acts no more and is not renewed.
    may_act: bool = True

    @property
    def needs_renewal(self) -> bool:
        return self.may_act and time.time() - self.issued_at > settings.PAYDESK_CONSOLE_PAGE_TOKEN_SECONDS / 3


def page_token_issue(*, link: ConsoleLink, session: PaySession) -> str:
    payload = {"l": link.pk, "s": str(session.uuid), "i": int(time.time())}
    return signing.TimestampSigner(salt=PAGE_TOKEN_SALT).sign_object(payload, compress=True)


class TokenRefused(Exception):
    pass


def page_token_read(token: str) -> PageGrant:
    try:
        payload = signing.TimestampSigner(salt=PAGE_TOKEN_SALT).unsign_object(
            token, max_age=settings.PAYDESK_CONSOLE_PAGE_TOKEN_SECONDS
        )
    except signing.SignatureExpired:
        raise TokenRefused("This console page has expired; open it again from your software.") from None
    except signing.BadSignature:
        raise TokenRefused("This console page is not valid.") from None
    link = ConsoleLink.objects.select_related("tenant", "api_key").filter(pk=payload.get("l")).first()
    if link is None:
        raise TokenRefused("This console page is not valid.")
    try:
        _check_grantor(link)
        may_act = True
    except LinkRefused:
        may_act = False
    return PageGrant(link=link, session_uuid=str(payload.get("s")), issued_at=int(payload.get("i", 0)), may_act=may_act)
