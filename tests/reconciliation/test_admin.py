"""The reconciliation admin: the exceptions queue (scoped, filtered, linked to the Stripe
dashboard, resolved with a note and audited), connector health, "reconcile now", and the
panel for the pay-session page."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from payments.reconciliation.admin import reconciliation_panel
from payments.reconciliation.admin.common import ScopedConnectorFilter
from payments.reconciliation.models import ConnectorSyncState, ReconciliationItem
from tenants.models import AuditEvent, Role
from tests.factories import MembershipFactory, UserFactory
from tests.reconciliation.conftest import make_item, paid_session, reconcile, set_code

pytestmark = pytest.mark.django_db


def url(name: str, *args) -> str:
    return reverse(f"admin:reconciliation_{name}", args=args)


def member(tenant, role):
    user = UserFactory()
    MembershipFactory(user=user, tenant=tenant, role=role)
    return user


def listed(response) -> set[int]:
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].queryset}


@pytest.fixture
def items(world):
    acme = world.acme.connectors
    return {
        "dev": make_item(acme["Stripe_Dev"], stripe_object_id="pi_3QAdminDev"),
        "prod": make_item(acme["Stripe_Prod"], reason="refunded", stripe_object_id="ch_3QAdminProd", days_old=9),
        "globex": make_item(world.globex.connectors["Stripe_Dev"], stripe_object_id="pi_3QGlobexHidden"),
    }


def test_the_queue_shows_only_the_users_tenants_items_and_connectors(client, world, items):
    client.force_login(member(world.acme.tenant, Role.FINANCE))

    response = client.get(url("reconciliationitem_changelist"))

    assert listed(response) == {items["dev"].pk, items["prod"].pk}
    spec = next(f for f in response.context["cl"].filter_specs if isinstance(f, ScopedConnectorFilter))
    assert {int(pk) for pk, _ in spec.lookup_choices} == {c.pk for c in world.acme.connectors.values()}
    assert b"pi_3QGlobexHidden" not in response.content
    assert client.get(url("reconciliationitem_change", items["globex"].pk)).status_code == 404


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"reason": "refunded"}, {"prod"}),
        ({"age": "1d"}, {"dev"}),
        ({"age": "30d"}, {"prod"}),
        ({"connector__environment": "production"}, {"prod"}),
        ({"status": "open"}, {"dev", "prod"}),
    ],
)
def test_queue_filters(client, world, items, params, expected):
    client.force_login(world.acme.owner)
    response = client.get(url("reconciliationitem_changelist"), params)
    assert listed(response) == {items[k].pk for k in expected}


def test_the_connector_filter_narrows_to_one_connector(client, world, items):
    client.force_login(world.acme.owner)
    dev = world.acme.connectors["Stripe_Dev"]
    assert listed(client.get(url("reconciliationitem_changelist"), {"connector": dev.pk})) == {items["dev"].pk}
    globex = world.globex.connectors["Stripe_Dev"]
    assert listed(client.get(url("reconciliationitem_changelist"), {"connector": globex.pk})) == set()


def test_each_item_links_to_stripe_in_the_connectors_mode(client, world, items):
    client.force_login(world.acme.owner)
    response = client.get(url("reconciliationitem_changelist"))
    assert b'href="https://dashboard.stripe.com/test/payments/pi_3QAdminDev"' in response.content
    assert b'href="https://dashboard.stripe.com/payments/ch_3QAdminProd"' in response.content


def test_finance_resolves_an_item_with_a_note_and_it_is_audited(client, world, items):
    user = member(world.acme.tenant, Role.FINANCE)
    client.force_login(user)
    item = items["dev"]

    response = client.post(url("reconciliationitem_change", item.pk), {"resolution_note": "Partner confirmed."})

    assert response.status_code == 302
    item.refresh_from_db()
    assert not item.is_open and item.resolved_by == user and item.resolution_note == "Partner confirmed."
    audit = AuditEvent.objects.get(action="reconciliation.item_resolved")
    assert audit.actor_user_id == user.pk and audit.changes["note"] == "Partner confirmed."
    page = client.get(url("reconciliationitem_change", item.pk))  # resolved: read-only from now on
    assert page.status_code == 200 and b'name="resolution_note"' not in page.content


def test_an_empty_note_does_not_resolve(client, world, items):
    client.force_login(world.acme.owner)
    response = client.post(url("reconciliationitem_change", items["dev"].pk), {"resolution_note": ""})
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert ReconciliationItem.objects.get(pk=items["dev"].pk).is_open


def test_a_viewer_sees_the_queue_but_cannot_resolve(client, world, items):
    client.force_login(member(world.acme.tenant, Role.VIEWER))
    assert listed(client.get(url("reconciliationitem_changelist"))) == {items["dev"].pk, items["prod"].pk}
    response = client.post(url("reconciliationitem_change", items["dev"].pk), {"resolution_note": "no"})
    assert response.status_code == 403
    assert ReconciliationItem.objects.get(pk=items["dev"].pk).is_open


def test_an_unhealthy_connector_shows_in_the_health_list(client, world, fake_stripe):
    dev = world.acme.connectors["Stripe_Dev"]
    fake_stripe.faults = [("charges", 401)]
    reconcile(dev)
    client.force_login(world.acme.owner)

    response = client.get(url("connectorhealth_changelist"))

    assert response.status_code == 200
    assert b"unhealthy" in response.content and b"rejected the key" in response.content
    assert b"Globex" not in response.content


def test_reconcile_now_runs_the_connector_and_is_audited(
    client, world, stripe_objects, django_capture_on_commit_callbacks
):
    dev = world.acme.connectors["Stripe_Dev"]
    session = paid_session(dev)
    intent = stripe_objects.payment(session)
    set_code(session, intent["id"])
    client.force_login(world.acme.owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url("connectorhealth_changelist"),
            {"action": "reconcile_now", "_selected_action": [str(dev.pk)], "index": "0"},
        )

    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Reconciliation requested for 1 connector(s)."]
    assert session.reconciliation.state == "matched"
    assert ConnectorSyncState.objects.get(connector=dev).healthy
    assert AuditEvent.objects.filter(action="reconciliation.requested", target_id=str(dev.uuid)).exists()


def test_reconcile_now_for_one_connector_and_never_for_another_tenants(
    client, world, django_capture_on_commit_callbacks, monkeypatch
):
    requested = []
    monkeypatch.setattr(
        "payments.reconciliation.services.reconcile_request", lambda *, connector, actor: requested.append(connector.pk)
    )
    client.force_login(world.acme.owner)
    dev, globex = world.acme.connectors["Stripe_Dev"], world.globex.connectors["Stripe_Dev"]

    assert client.get(url("connector_reconcile", dev.pk)).status_code == 200  # the confirmation page
    response = client.post(url("connector_reconcile", dev.pk), {"next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.post(url("connector_reconcile", globex.pk)).status_code == 404
    assert requested == [dev.pk]


def test_the_pay_session_panel_shows_the_state_stripe_links_and_items(world, stripe_objects):
    dev = world.acme.connectors["Stripe_Dev"]
    session = paid_session(dev, amount_minor=1300)
    intent = stripe_objects.payment(session, amount=1250)
    set_code(session, intent["id"])
    assert "Not checked against Stripe yet" in reconciliation_panel(session)

    reconcile(dev)
    html = reconciliation_panel(session)

    assert "amount mismatch" in html
    assert f'href="https://dashboard.stripe.com/test/payments/{intent["charge_id"]}"' in html
    item = ReconciliationItem.objects.get(session=session)
    assert reverse("admin:reconciliation_reconciliationitem_change", args=[item.pk]) in html
    assert reverse("admin:reconciliation_connector_reconcile", args=[dev.pk]) in html


def test_the_pay_session_page_shows_the_panel_the_reconciliation_app_plugs_in(world, client):
    session = paid_session(world.acme.connectors["Stripe_Dev"], amount_minor=1300)
    client.force_login(world.acme.owner)
    page = client.get(reverse("admin:payments_paysession_change", args=[session.pk])).content.decode()
    assert "Reconciliation with Stripe" in page
    assert "Not checked against Stripe yet" in page  # the panel itself, not the reverse relation's "-"


def test_stripe_amounts_read_in_major_units_with_the_currency(world, client):
    from django.utils import timezone

    from payments.reconciliation.models import SessionReconciliation, StripeCharge
    from tests.factories import PaySessionFactory

    client.force_login(world.acme.owner)
    connector = world.acme.connectors["Stripe_Dev"]
    charge = StripeCharge.objects.create(
        tenant=world.acme.tenant,
        connector=connector,
        stripe_id="ch_3Major",
        amount=1250,
        currency="USD",
        status="succeeded",
        created=timezone.now(),
        observed_at=timezone.now(),
        updated_at=timezone.now(),
    )
    session = PaySessionFactory(tenant=world.acme.tenant, connector=connector)
    record = SessionReconciliation.objects.create(
        tenant=world.acme.tenant,
        connector=connector,
        session=session,
        state="matched",
        stripe_amount=1250,
        stripe_currency="USD",
        fee=66,
        net=1184,
        checked_at=timezone.now(),
    )

    listing = client.get(reverse("admin:reconciliation_stripecharge_changelist")).content.decode()
    page = client.get(reverse("admin:reconciliation_stripecharge_change", args=[charge.pk])).content.decode()
    states = client.get(reverse("admin:reconciliation_sessionreconciliation_changelist")).content.decode()
    state = client.get(reverse("admin:reconciliation_sessionreconciliation_change", args=[record.pk])).content.decode()

    assert "12.50 USD" in listing and ">1250<" not in listing
    assert "12.50 USD" in page
    assert "0.66 USD" in states and "11.84 USD" in states
    assert "12.50 USD" in state and "0.66 USD" in state
