"""The exceptions queue over time: resolved by a person with a note (audited), closed by
itself when Stripe and Paydesk agree again, opened again when the difference changes."""

import pytest
from django.core.exceptions import ValidationError

from config.errors import Conflict
from payments.reconciliation.models import ReconciliationItem, State
from payments.reconciliation.services import reconciliation_item_resolve
from tenants.models import AuditEvent
from tenants.services import Actor
from tests.reconciliation.conftest import paid_session, reconcile, set_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def refunded(dev, stripe_objects):
    """A session Stripe charged 19.00 for where Paydesk says 20.00, then refunded 5.00 of."""
    session = paid_session(dev, amount_minor=2000)
    intent = stripe_objects.payment(session, amount=1900)
    set_code(session, intent["id"])
    stripe_objects.refund(intent["charge_id"], amount=500)
    reconcile(dev)
    return session, intent, ReconciliationItem.objects.get(session=session, reason=State.AMOUNT_MISMATCH)


def test_a_person_resolves_an_item_with_a_note_and_it_is_audited(world, refunded):
    _, _, item = refunded
    actor = Actor.for_user(world.acme.owner, ip_address="203.0.113.9")

    reconciliation_item_resolve(item=item, note="Refund agreed with the customer on the phone.", actor=actor)

    item.refresh_from_db()
    assert not item.is_open and item.resolved_by == world.acme.owner
    assert item.resolution_note == "Refund agreed with the customer on the phone."
    audit = AuditEvent.objects.get(action="reconciliation.item_resolved")
    assert audit.tenant == item.tenant and audit.target_id == str(item.uuid) and audit.ip_address == "203.0.113.9"
    assert audit.changes["note"] == "Refund agreed with the customer on the phone."
    with pytest.raises(Conflict):
        reconciliation_item_resolve(item=item, note="again", actor=actor)


def test_a_note_is_required(world, refunded):
    with pytest.raises(ValidationError):
        reconciliation_item_resolve(item=refunded[2], note="   ", actor=Actor.for_user(world.acme.owner))
    assert refunded[2].is_open and not AuditEvent.objects.filter(action="reconciliation.item_resolved").exists()


def test_a_resolved_item_stays_resolved_while_the_difference_is_the_same(dev, world, refunded):
    _, _, item = refunded
    reconciliation_item_resolve(item=item, note="ok", actor=Actor.for_user(world.acme.owner))

    reconcile(dev, full=True)

    item.refresh_from_db()
    assert not item.is_open


def test_a_resolved_item_is_opened_again_when_the_difference_changes(dev, world, stripe_objects, refunded):
    session, intent, item = refunded
    reconciliation_item_resolve(item=item, note="Partial refund agreed.", actor=Actor.for_user(world.acme.owner))

    stripe_objects.refund(intent["charge_id"], amount=1400)  # now fully refunded: news
    reconcile(dev)

    item.refresh_from_db()
    assert item.is_open and item.resolution_note == "" and item.stripe_data["amount_refunded"] == 1900
    assert AuditEvent.objects.get(action="reconciliation.item_resolved").changes["note"] == "Partial refund agreed."


def test_an_item_closes_by_itself_when_stripe_and_paydesk_agree_again(dev, stripe_objects):
    session = paid_session(dev)  # Twilio reported success without a confirmation code
    reconcile(dev)
    item = ReconciliationItem.objects.get(session=session, reason=State.MISSING_IN_STRIPE)
    assert item.is_open

    stripe_objects.payment(session)  # Stripe's charge shows up later, carrying the reference
    reconcile(dev)

    item.refresh_from_db()
    assert not item.is_open and item.resolved_by is None and "Closed automatically" in item.resolution_note
    assert session.reconciliation.state == State.MATCHED
