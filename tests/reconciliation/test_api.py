"""GET /api/v1/reconciliation/items/: the tenant's exceptions queue, filtered; another
tenant's item is 404; the reconciliation state each pay session shows."""

from datetime import timedelta

import pytest

from payments.reconciliation.api.serializers import SessionReconciliationField
from payments.reconciliation.models import State
from payments.sessions.api.serializers import PaySessionSerializer
from payments.sessions.models import PaySession
from tenants.models import Scope
from tenants.services import Actor, api_key_create
from tests.reconciliation.conftest import make_item, paid_session, reconcile, set_code

pytestmark = pytest.mark.django_db
URL = "/api/v1/reconciliation/items/"


@pytest.fixture
def queue(world):
    acme = world.acme.connectors
    return {
        "dev_amount": make_item(acme["Stripe_Dev"], reason="amount_mismatch", stripe_object_id="pi_3QDevAmount"),
        "dev_missing_old": make_item(acme["Stripe_Dev"], reason="missing_in_stripe", days_old=10),
        "prod_refunded": make_item(acme["Stripe_Prod"], reason="refunded", stripe_object_id="ch_3QProdRefund"),
        "dev_resolved": make_item(acme["Stripe_Dev"], reason="disputed", resolved=True),
        "globex": make_item(world.globex.connectors["Stripe_Dev"], reason="amount_mismatch"),
    }


def ids(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {item["id"] for item in response.json()["results"]}


def test_the_list_holds_only_the_callers_items_with_both_sides(world, api_for, queue):
    response = api_for(world.acme.raw_key).get(URL)
    assert ids(response) == {str(queue[k].uuid) for k in queue if k != "globex"}
    [item] = [i for i in response.json()["results"] if i["id"] == str(queue["dev_amount"].uuid)]
    assert item["reason"] == "amount_mismatch" and item["status"] == "open" and item["connector"] == "Stripe_Dev"
    assert item["paydesk"] == {"amount_minor": 1250, "currency": "USD"} and item["stripe"]["amount"] == 1200
    assert item["session"] == str(queue["dev_amount"].session.uuid)
    assert item["stripe_dashboard_url"] == "https://dashboard.stripe.com/test/payments/pi_3QDevAmount"
    prod = [i for i in response.json()["results"] if i["id"] == str(queue["prod_refunded"].uuid)][0]
    assert prod["stripe_dashboard_url"] == "https://dashboard.stripe.com/payments/ch_3QProdRefund"  # live mode


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"reason": "amount_mismatch"}, {"dev_amount"}),
        ({"reason": ["refunded", "disputed"]}, {"prod_refunded", "dev_resolved"}),
        ({"status": "open"}, {"dev_amount", "dev_missing_old", "prod_refunded"}),
        ({"status": "resolved"}, {"dev_resolved"}),
        ({"connector": "Stripe_Prod"}, {"prod_refunded"}),
        ({"environment": "production"}, {"prod_refunded"}),
        ({"stripe_object_id": "pi_3QDevAmount"}, {"dev_amount"}),
    ],
)
def test_filters(world, api_for, queue, params, expected):
    assert ids(api_for(world.acme.raw_key).get(URL, params)) == {str(queue[k].uuid) for k in expected}


def test_filter_by_age_and_by_session(world, api_for, queue):
    client = api_for(world.acme.raw_key)
    old = queue["dev_missing_old"]
    assert ids(client.get(URL, {"opened_before": old.opened_at.isoformat().replace("+00:00", "Z")})) == set()
    before = (old.opened_at.replace(microsecond=0) + timedelta(days=1)).isoformat()
    assert ids(client.get(URL, {"opened_before": before})) == {str(old.uuid)}
    assert ids(client.get(URL, {"session": str(old.session.uuid)})) == {str(old.uuid)}


def test_another_tenants_item_is_404(world, api_for, queue):
    client = api_for(world.acme.raw_key)
    assert client.get(f"{URL}{queue['globex'].uuid}/").status_code == 404
    assert client.get(f"{URL}{queue['dev_amount'].uuid}/").status_code == 200


def test_the_reconciliation_scope_is_required(world, api_for, queue):
    _, raw = api_key_create(
        tenant=world.acme.tenant, name="payments only", scopes=[Scope.PAYMENTS_READ], actor=Actor.system("test")
    )
    response = api_for(raw).get(URL)
    assert response.status_code == 403 and response.json()["error"]["code"] == "missing_scope"
    assert api_for(None).get(URL).status_code in (401, 403)


def test_each_pay_session_shows_its_reconciliation_state(dev, stripe_objects):
    session = paid_session(dev)
    field = SessionReconciliationField(source="*", read_only=True)
    assert field.to_representation(session) is None  # not checked yet
    intent = stripe_objects.payment(session)
    set_code(session, intent["id"])
    reconcile(dev)
    session.refresh_from_db()

    shown = field.to_representation(session)

    assert shown["state"] == State.MATCHED and shown["charge_id"] == intent["charge_id"]
    assert (shown["stripe_amount_minor"], shown["fee_minor"], shown["net_minor"]) == (1250, 0, 1250)


def test_the_field_plugs_into_the_pay_session_serializer_as_proposed(dev, stripe_objects):
    class WithReconciliation(PaySessionSerializer):  # the change proposed for payments/api/serializers.py
        reconciliation = SessionReconciliationField(source="*", read_only=True)

        class Meta(PaySessionSerializer.Meta):
            fields = [*PaySessionSerializer.Meta.fields, "reconciliation"]

    session = paid_session(dev)
    set_code(session, stripe_objects.payment(session)["id"])
    reconcile(dev)
    listed = PaySession.objects.select_related("connector", "reconciliation").get(pk=session.pk)
    assert WithReconciliation(listed).data["reconciliation"]["state"] == "matched"
