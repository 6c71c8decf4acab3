"""Stripe-only charges: succeeded charges that carry a `Paydesk <uuid>` reference and that
no session accounts for. These are the payments whose callbacks were lost (or a second
charge for one session). The session they name, looked up in the connector's tenant
only, is recovered from them: its record links the charge, and an item is opened."""

from datetime import datetime

from connectors.models import ConnectorInstance
from payments.reconciliation.items import CHARGE_REASONS, Difference, items_sync
from payments.reconciliation.matching import (
    LINKED,
    Batch,
    Verdict,
    grace,
    paydesk_side,
    record_for,
    records_save,
    stripe_side,
)
from payments.reconciliation.models import ReconciliationItem, SessionReconciliation, State, StripeCharge
from payments.sessions.models import PaySession


def find_stripe_only(*, connector: ConnectorInstance, now: datetime) -> int:
    """Succeeded charges with a Paydesk reference that no session accounts for.

    A charge naming a session of another connector of the tenant is that connector's
    business (two connectors may share one Stripe account, a stage and a dev one)."""
    linked = SessionReconciliation.objects.filter(tenant_id=connector.tenant_id, state__in=LINKED).values("charge_id")
    charges = list(
        StripeCharge.objects.filter(
            connector=connector, status="succeeded", paydesk_ref__isnull=False, created__lte=now - grace()
        ).exclude(stripe_id__in=linked)
    )
    sessions = {
        s.uuid: s
        for s in PaySession.objects.filter(
            tenant_id=connector.tenant_id, uuid__in={c.paydesk_ref for c in charges}
        ).select_related("reconciliation")
    }
    seen, records = [], []
    for charge in charges:
        session = sessions.get(charge.paydesk_ref)
        if session is not None and session.connector_id != connector.pk:
            continue
        owner = getattr(session, "reconciliation", None) if session else None
        double = owner is not None and owner.state in LINKED and owner.charge_id != charge.stripe_id
        if session is not None and not double:
            verdict = Verdict(
                State.STRIPE_ONLY,
                _only_detail(session, charge),
                charge=charge,
                stripe_object_id=charge.stripe_id,
                amount_refunded=charge.amount_refunded,
            )
            records.append(record_for(session, verdict, Batch(), now))
        detail = _only_detail(session, charge, double=double)
        seen.append(
            Difference(
                State.STRIPE_ONLY,
                charge.stripe_id,
                session.pk if session else None,
                charge.stripe_id,
                detail,
                paydesk_side(session) if session else {"session": str(charge.paydesk_ref), "known": False},
                stripe_side(charge, None),
            )
        )
    records_save(records)
    open_items = set(
        ReconciliationItem.objects.filter(
            connector=connector, reason=State.STRIPE_ONLY, resolved_at__isnull=True
        ).values_list("subject", flat=True)
    )
    items_sync(connector=connector, subjects=open_items, reasons=CHARGE_REASONS, seen=seen, now=now)
    return len(seen)


def _only_detail(session: PaySession | None, charge: StripeCharge, *, double: bool = False) -> str:
    if session is None:
        return f"Charge {charge.stripe_id} names session {charge.paydesk_ref}, which this tenant does not have."
    if double:
        return f"Charge {charge.stripe_id} is a second charge for session {session.uuid}."
    if not session.result:
        return f"Charge {charge.stripe_id} for session {session.uuid}, whose result never arrived (callback lost)."
    return f"Charge {charge.stripe_id} for session {session.uuid}, which Twilio reported as {session.result}."
