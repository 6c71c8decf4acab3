"""Reads that cross a layer: the exceptions queue, a session's reconciliation, the
connector a webhook URL names, and connectors' sync health. `tenant` is required."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from connectors.models import ConnectorInstance
from payments.reconciliation.items import stripe_dashboard_url
from payments.reconciliation.models import ConnectorSyncState, ReconciliationItem, SessionReconciliation
from payments.sessions.models import PaySession
from tenants.models import Tenant


def item_list(*, tenant: Tenant) -> QuerySet[ReconciliationItem]:
    return ReconciliationItem.objects.filter(tenant=tenant).select_related("connector", "session", "resolved_by")


def item_get(*, tenant: Tenant, uuid) -> ReconciliationItem:
    """The tenant's item, or 404: another tenant's item does not exist for it."""
    return get_object_or_404(item_list(tenant=tenant), uuid=uuid)


def item_dashboard_url(item: ReconciliationItem) -> str:
    return stripe_dashboard_url(mode=item.connector.mode, object_id=item.stripe_object_id)


def session_reconciliation(*, tenant: Tenant, session: PaySession) -> SessionReconciliation | None:
    if session.tenant_id != tenant.pk:
        return None
    return SessionReconciliation.objects.filter(tenant=tenant, session=session).first()


def session_reconciliation_summary(session: PaySession) -> dict | None:
    """What the pay-session API shows (`reconciliation`): None until first checked.

    Reads `session.reconciliation` (select_related("reconciliation") in a list avoids a
    query per row); the record belongs to the session, so it is the session's tenant's.
    """
    try:
        record = session.reconciliation
    except SessionReconciliation.DoesNotExist:
        return None
    return {
        "state": record.state,
        "detail": record.detail,
        "stripe_object_id": record.stripe_object_id,
        "charge_id": record.charge_id,
        "stripe_amount_minor": record.stripe_amount,
        "stripe_currency": record.stripe_currency,
        "amount_refunded_minor": record.amount_refunded,
        "fee_minor": record.fee,
        "net_minor": record.net,
        "available_on": record.available_on.isoformat() if record.available_on else None,
        "payout_id": record.payout_id,
        "checked_at": record.checked_at.isoformat(),
    }


def connector_for_webhook(*, uuid) -> ConnectorInstance | None:
    """The connector a webhook URL names (its tenant comes with it)."""
    return ConnectorInstance.objects.select_related("tenant").filter(uuid=uuid).first()


def sync_states(*, tenant: Tenant) -> QuerySet[ConnectorSyncState]:
    return ConnectorSyncState.objects.filter(tenant=tenant).select_related("connector")
