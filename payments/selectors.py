from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from payments.models import PayEvent, PaySession
from tenants.models import Tenant


def pay_session_list(*, tenant: Tenant) -> QuerySet[PaySession]:
    return PaySession.objects.filter(tenant=tenant).select_related("connector", "tenant")


def pay_session_get(*, tenant: Tenant, uuid) -> PaySession:
    """The tenant's session, or 404: another tenant's session does not exist for it."""
    return get_object_or_404(pay_session_list(tenant=tenant), uuid=uuid)


def pay_session_events(*, tenant: Tenant, session: PaySession) -> QuerySet[PayEvent]:
    return PayEvent.objects.filter(tenant=tenant, session=session).order_by("received_at", "id")


def pay_session_for_callback(*, token: str) -> PaySession | None:
    """The session a StatusCallback URL names (the tenant comes from the session).

    Only what the hot path needs: the signature check and storing the event."""
    return (
        PaySession.objects.select_related("tenant")
        .only(
            "id",
            "uuid",
            "tenant_id",
            "tenant__id",
            "tenant__twilio_account_sid",
            "tenant__twilio_auth_token_ciphertext",
        )
        .filter(callback_token=token)
        .order_by()
        .first()
    )
