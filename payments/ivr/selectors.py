"""Reads of the IVR sub-app. Tenant-facing reads take the tenant; the webhook lookups
take the unguessable token of a URL (the signature check that follows names the tenant)."""

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from payments.ivr.models import IvrPayment, PaymentFlow, PaymentReference
from payments.sessions.models import PayEvent, PaySession
from tenants.models import Tenant


def payment_flow_list(*, tenant: Tenant) -> QuerySet[PaymentFlow]:
    return PaymentFlow.objects.filter(tenant=tenant).select_related("tenant", "connector")


def payment_flow_get(*, tenant: Tenant, uuid) -> PaymentFlow:
    """The tenant's flow, or 404: another tenant's flow does not exist for it."""
    return get_object_or_404(payment_flow_list(tenant=tenant), uuid=uuid)


def payment_reference_list(*, tenant: Tenant, flow: PaymentFlow) -> QuerySet[PaymentReference]:
    return PaymentReference.objects.filter(tenant=tenant, flow=flow).select_related("flow", "paid_session")


def payment_reference_get(*, tenant: Tenant, flow: PaymentFlow, reference: str) -> PaymentReference:
    return get_object_or_404(payment_reference_list(tenant=tenant, flow=flow), reference=reference)


# --- Webhook lookups ------------------------------------------------------------------


def payment_flow_for_voice(*, token: str) -> PaymentFlow | None:
    return PaymentFlow.objects.select_related("tenant", "connector").filter(voice_token=token).first()


def payment_reference_open(*, flow: PaymentFlow, reference: str) -> PaymentReference | None:
    """An unpaid reference of this flow (never another flow's, never another tenant's)."""
    return PaymentReference.objects.filter(
        tenant_id=flow.tenant_id, flow=flow, reference=reference, status=PaymentReference.Status.OPEN
    ).first()


def payment_reference_for_confirm(*, flow: PaymentFlow, uuid) -> PaymentReference | None:
    try:
        return PaymentReference.objects.filter(tenant_id=flow.tenant_id, flow=flow, uuid=uuid).first()
    except ValidationError:  # not a UUID
        return None


def ivr_payment_for_token(*, token: str) -> IvrPayment | None:
    """The IVR payment whose <Pay> action/status URL carries this session token."""
    return (
        IvrPayment.objects.select_related(
            "tenant", "flow", "flow__tenant", "flow__connector", "pay_session", "pay_session__connector", "reference"
        )
        .filter(pay_session__callback_token=token, pay_session__channel=PaySession.Channel.IVR)
        .first()
    )


def ivr_action_result(*, payment: IvrPayment) -> str:
    """The Result Twilio posted to the <Pay> action ("" before it came). Read from the
    stored request, so it does not wait for the callbacks to be folded."""
    event = (
        PayEvent.objects.filter(
            tenant_id=payment.tenant_id,
            session_id=payment.pay_session_id,
            direction=PayEvent.Direction.INBOUND,
            kind="action",
        )
        .order_by("received_at", "id")
        .first()
    )
    return event.payload.get("Result", "") if event else ""


def pay_sessions_with_reference(term: str):
    """For the pay-session admin's search: a Q on PaySession selecting the sessions of IVR
    payments of this reference (None when the term cannot be a reference). The admin
    scopes the result to the user's tenants."""
    if not term.isdigit() or len(term) > 32:
        return None
    return Q(pk__in=IvrPayment.objects.filter(reference__reference=term).values("pay_session_id"))
