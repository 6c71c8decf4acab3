import uuid
from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from payments.sessions.models import PayEvent, PaySession
from tenants.models import Tenant


def pay_session_list(*, tenant: Tenant) -> QuerySet[PaySession]:
    return PaySession.objects.filter(tenant=tenant).select_related("connector", "tenant")


def pay_session_get(*, tenant: Tenant, uuid) -> PaySession:
    """The tenant's session, or 404: another tenant's session does not exist for it."""
    return get_object_or_404(pay_session_list(tenant=tenant), uuid=uuid)


def pay_session_events(*, tenant: Tenant, session: PaySession) -> QuerySet[PayEvent]:
    return PayEvent.objects.filter(tenant=tenant, session=session).order_by("received_at", "id")


@dataclass(frozen=True, slots=True)
class CallbackTarget:
    """What a status callback needs to be verified and stored: ids and the tenant's
    Twilio credentials (the auth token still encrypted)."""

    session_id: int
    session_uuid: uuid.UUID
    tenant_id: int
    twilio_account_sid: str
    twilio_auth_token_ciphertext: str


# Plain SQL because this runs for every callback Twilio sends: building the equivalent ORM
# query (select_related + only) cost several times more than running it (bench/callbacks.py,
# bench/README.md). tests/payments/test_callbacks.py proves it against the models.
_CALLBACK_TARGET_SQL = (
    "SELECT s.id, s.uuid, s.tenant_id, t.twilio_account_sid, t.twilio_auth_token_ciphertext"
    " FROM payments_paysession s JOIN tenants_tenant t ON t.id = s.tenant_id"
    " WHERE s.callback_token = %s"
)


def pay_session_for_callback(*, token: str) -> CallbackTarget | None:
    """The session a StatusCallback URL names (the tenant comes from the session)."""
    with connection.cursor() as cursor:
        cursor.execute(_CALLBACK_TARGET_SQL, [token])
        row = cursor.fetchone()
    if row is None:
        return None
    session_id, session_uuid, tenant_id, account_sid, ciphertext = row
    return CallbackTarget(session_id, session_uuid, tenant_id, account_sid, ciphertext)
