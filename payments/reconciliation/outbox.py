"""The reconciliation events partners receive (payments.outbox): an exception opened
(or opened again), an exception resolved (by a person, or closed by a run because Stripe
and Paydesk agree again). Recorded by the services in the transaction of the change,
with the item as the REST API shows it."""

from payments.outbox import catalogue
from payments.outbox.services import NewEvent, events_record
from payments.reconciliation.models import ReconciliationItem


def record(opened: list[ReconciliationItem], resolved: list[ReconciliationItem]) -> None:
    # Imported here: the serializers import the selectors, which import items.py, which imports this.
    from payments.reconciliation.api.serializers import ReconciliationItemSerializer

    kinds = {item.pk: catalogue.RECONCILIATION_EXCEPTION_OPENED for item in opened}
    kinds.update({item.pk: catalogue.RECONCILIATION_EXCEPTION_RESOLVED for item in resolved})
    if not kinds:
        return
    items = ReconciliationItem.objects.select_related("connector", "session", "resolved_by").filter(pk__in=kinds)
    events_record(
        NewEvent(
            tenant_id=item.tenant_id,
            type=kinds[item.pk],
            data=ReconciliationItemSerializer(item).data,
            ordering_key=f"reconciliation_item:{item.uuid}",
        )
        for item in items.order_by("pk")
    )
