"""What a partner's webhook receiver gets during whole sessions: Paydesk's REST API →
Twilio Pay simulator → signed callbacks to Paydesk (live server) → Stripe (localstripe),
and Paydesk's signed events to the partner's receiver on loopback."""

import pytest

from payments.partner_webhooks.services import webhook_endpoint_create
from tenants.services import Actor
from tests.payments.test_pay_sessions_e2e import Agent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def partner(desk, api_for, receiver):
    _, secret = webhook_endpoint_create(tenant=desk.world.acme.tenant, url=receiver.url, actor=Actor.system("test"))
    return Agent(desk, api_for(desk.world.acme.raw_key)), receiver, secret


def received(receiver, secret) -> list[dict]:
    """Every event the receiver got, each signature verified, each message once."""
    payloads = receiver.verify_all(secret)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == len(set(ids)) and all(r.answered == 200 for r in receiver.received)
    return payloads


def test_a_charge_tells_the_partner_created_updates_then_succeeded(partner):
    agent, receiver, secret = partner
    session = agent.start(charge_amount="12.50", currency="USD")
    agent.enter_card()
    final = agent.complete()
    assert final["status"] == "succeeded"

    events = received(receiver, secret)
    types = [e["type"] for e in events]
    assert types[0] == "pay_session.created" and types[-1] == "pay_session.succeeded"
    assert set(types[1:-1]) == {"pay_session.updated"} and len(types) >= 6
    assert {e["data"]["id"] for e in events} == {session["id"]}
    assert events[-1]["data"] == final  # the representation the API gives
    statuses = [e["data"]["status"] for e in events]
    assert statuses.index("capturing") < statuses.index("ready") < statuses.index("succeeded")
    # The result callback may be applied before the complete request is answered, in which
    # case the partner never sees "completing"; when it does, it comes before the result.
    if "completing" in statuses:
        assert statuses.index("ready") < statuses.index("completing") < statuses.index("succeeded")
    assert "4242424242424242" not in str(events)


def test_a_decline_tells_the_partner_failed(partner):
    agent, receiver, secret = partner
    agent.start(charge_amount="20.00")
    agent.enter_card("4000000000000002")
    final = agent.complete()

    events = received(receiver, secret)
    assert events[-1]["type"] == "pay_session.failed" and events[-1]["data"] == final
    assert events[-1]["data"]["outcome"]["pay_error_code"] == "64012"
    assert "pay_session.succeeded" not in [e["type"] for e in events]


def test_a_cancel_tells_the_partner_cancelled(partner):
    agent, receiver, secret = partner
    agent.start(charge_amount="5.00")
    agent.capture("payment-card-number", "4242424242424242")
    response = agent.post("cancel")
    assert response.status_code == 200
    agent.deliver()

    events = received(receiver, secret)
    assert [e["type"] for e in events][-1] == "pay_session.cancelled"
    assert events[-1]["data"]["status"] == "cancelled" and events[-1]["data"] == agent.get()
    assert [e["type"] for e in events].count("pay_session.cancelled") == 1
