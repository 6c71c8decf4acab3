"""The partner API of IVR flows: flows (read), references registered before the call,
and the Studio export. Another tenant's flow answers 404."""

import json

import pytest

from payments.ivr import services
from payments.ivr.models import PaymentReference
from payments.ivr.studio import PAY_TRANSITIONS
from tenants.services import Actor, api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_api(api_for, world):
    return api_for(world.acme.raw_key)


def refs_url(flow):
    return f"/api/v1/payment-flows/{flow.uuid}/references/"


def test_flows_are_listed_for_their_tenant_only(acme_api, make_flow, world):
    mine = make_flow(world.acme, name="Bills", min_amount_minor=500, max_amount_minor=100000)
    make_flow(world.globex, name="Theirs")
    body = acme_api.get("/api/v1/payment-flows/").json()
    assert [f["name"] for f in body["results"]] == ["Bills"]
    flow = body["results"][0]
    assert flow["id"] == str(mine.uuid)
    assert (flow["min_amount"], flow["max_amount"], flow["fixed_amount"]) == ("5.00", "1000.00", None)
    assert flow["voice_url"] == f"http://testserver/twilio/ivr/{mine.voice_token}/voice/"
    assert flow["connector"] == "Stripe_Dev" and flow["amount_entry"] == "units-then-cents"


@pytest.mark.parametrize("suffix", ["", "studio/", "references/", "references/123/"])
def test_another_tenants_flow_is_404_on_every_route(acme_api, make_flow, world, suffix):
    theirs = make_flow(world.globex, amount_source="reference")
    services.payment_reference_register(flow=theirs, reference="123", amount_minor=100, actor=Actor.system("t"))
    response = acme_api.get(f"/api/v1/payment-flows/{theirs.uuid}/{suffix}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_registering_into_another_tenants_flow_is_404(acme_api, make_flow, world):
    theirs = make_flow(world.globex, amount_source="reference")
    response = acme_api.post(refs_url(theirs), {"reference": "1", "amount": "1.00"}, format="json")
    assert response.status_code == 404
    assert not PaymentReference.objects.exists()


def test_a_partner_registers_then_changes_a_reference(acme_api, make_flow):
    flow = make_flow(amount_source="reference")
    first = acme_api.post(refs_url(flow), {"reference": "0042", "amount": "12.50", "description": "Invoice 42"},
                          format="json")  # fmt: skip
    assert first.status_code == 201
    assert {k: first.json()[k] for k in ("reference", "amount", "currency", "status")} == {
        "reference": "0042", "amount": "12.50", "currency": "USD", "status": "open"}  # fmt: skip
    again = acme_api.post(refs_url(flow), {"reference": "0042", "amount": "13.00"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    row = PaymentReference.objects.get()
    assert (row.amount_minor, row.tenant, row.registered_by_api_key.name) == (1300, flow.tenant, "partner")
    assert acme_api.get(refs_url(flow) + "0042/").json()["amount"] == "13.00"
    assert [r["reference"] for r in acme_api.get(refs_url(flow)).json()["results"]] == ["0042"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"reference": "12a", "amount": "1.00"}, "reference"),
        ({"reference": "1" * 33, "amount": "1.00"}, "reference"),
        ({"reference": "1", "amount": "1.005"}, "amount"),
        ({"reference": "1", "amount": "0"}, "amount"),
        ({"reference": "1", "amount": "ten"}, "amount"),
        ({"reference": "1", "amount": "4.99"}, "amount"),  # below the flow's minimum
        ({"reference": "1"}, "amount"),
        ({"reference": "1", "amount": "١٢"}, "amount"),  # Arabic-Indic digits: ASCII only
        ({"reference": "1", "amount": "１２"}, "amount"),  # full-width digits
        ({"reference": "1", "amount": "-0.00"}, "amount"),
    ],
)
def test_invalid_references_are_400_with_the_field(acme_api, make_flow, body, field):
    flow = make_flow(amount_source="reference", min_amount_minor=500)
    response = acme_api.post(refs_url(flow), body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not PaymentReference.objects.exists()


def test_a_flow_not_paid_by_reference_takes_no_references(acme_api, make_flow):
    response = acme_api.post(refs_url(make_flow()), {"reference": "1", "amount": "1.00"}, format="json")
    assert response.status_code == 400 and "flow" in response.json()["error"]["fields"]


def test_a_paid_reference_cannot_change(acme_api, make_flow):
    flow = make_flow(amount_source="reference")
    acme_api.post(refs_url(flow), {"reference": "9", "amount": "1.00"}, format="json")
    PaymentReference.objects.update(status="paid")
    response = acme_api.post(refs_url(flow), {"reference": "9", "amount": "2.00"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "reference_paid"
    assert PaymentReference.objects.get().amount_minor == 100


def test_scopes(api_for, make_flow, world):
    flow = make_flow(amount_source="reference")
    _, read_only = api_key_create(tenant=world.acme.tenant, name="ro", scopes=["payments:read"],
                                  actor=Actor.system("t"))  # fmt: skip
    _, no_payments = api_key_create(tenant=world.acme.tenant, name="np", scopes=["tenant:read"],
                                    actor=Actor.system("t"))  # fmt: skip
    assert api_for(read_only).get(f"/api/v1/payment-flows/{flow.uuid}/studio/").status_code == 409  # read allowed
    assert api_for(read_only).post(refs_url(flow), {"reference": "1", "amount": "1"}, format="json").status_code == 403
    assert api_for(no_payments).get("/api/v1/payment-flows/").status_code == 403
    assert api_for(None).get("/api/v1/payment-flows/").status_code in (401, 403)


# --- Studio export ----------------------------------------------------------------------


def states_of(definition):
    return {state["name"]: state for state in definition["states"]}


def test_the_studio_export_gathers_dollars_and_cents_and_reports_back(acme_api, make_flow):
    flow = make_flow(max_attempts=2, description="Water")
    response = acme_api.get(f"/api/v1/payment-flows/{flow.uuid}/studio/")
    assert response.status_code == 200
    definition = response.json()
    json.dumps(definition)  # plain JSON, as Studio imports it
    states = states_of(definition)
    assert definition["initial_state"] == "Trigger"
    incoming = [t for t in states["Trigger"]["transitions"] if t["event"] == "incomingCall"]
    assert incoming == [{"next": "say_greeting", "event": "incomingCall"}]
    greeting = states["say_greeting"]
    assert greeting["properties"]["say"] == "Thank you for calling Acme."
    assert greeting["transitions"] == [{"next": "gather_amount", "event": "audioComplete"}]

    dollars, cents = states["gather_amount"], states["gather_minor"]
    assert dollars["type"] == cents["type"] == "gather-input-on-call"
    assert "in dollars" in dollars["properties"]["say"] and dollars["properties"]["finish_on_key"] == "#"
    assert cents["properties"]["number_of_digits"] == 2
    assert {"next": "gather_minor", "event": "keypress"} in dollars["transitions"]

    pay = states["capture_payment"]
    assert pay["type"] == "capture-payments"
    amount = pay["properties"]["payment_amount"]
    assert "widgets.gather_amount.Digits" in amount and "widgets.gather_minor.Digits" in amount
    assert "prepend: '00' | slice: -2, 2" in amount  # 5 cents is .05, not .50
    assert pay["properties"]["payment_connector"] == "Stripe_Dev" and pay["properties"]["max_attempts"] == 2
    assert pay["properties"]["currency"] == "usd" and pay["properties"]["description"] == "Water"
    assert {t["event"] for t in pay["transitions"]} == set(PAY_TRANSITIONS) == {
        "success", "maxFailedAttempts", "providerError", "payInterrupted", "hangup", "validationError"}  # fmt: skip
    assert {t["next"] for t in pay["transitions"]} == {"report_result"}

    report = states["report_result"]
    assert report["type"] == "make-http-request" and report["properties"]["method"] == "POST"
    assert report["properties"]["url"] == f"http://testserver/twilio/ivr/{flow.voice_token}/studio/"
    sent = {p["key"]: p["value"] for p in report["properties"]["parameters"]}
    assert sent["CallSid"] == "{{trigger.call.CallSid}}" and sent["ChargeAmount"] == amount
    assert sent["Result"] == "{{widgets.capture_payment.Result}}"

    confirm = states["check_confirmation"]
    nexts = {c["conditions"][0]["value"]: c["next"] for c in confirm["transitions"] if c["event"] == "match"}
    assert nexts == {"1": "capture_payment", "2": "gather_amount"}
    every_next = {t.get("next") for s in definition["states"] for t in s["transitions"]} - {None}
    assert every_next <= set(states)  # no dangling transition


def test_studio_exports_for_other_currencies_and_modes(acme_api, make_flow):
    def export(flow):
        return states_of(acme_api.get(f"/api/v1/payment-flows/{flow.uuid}/studio/").json())

    jpy = export(make_flow(currency="JPY"))
    assert "gather_minor" not in jpy
    assert jpy["capture_payment"]["properties"]["payment_amount"] == "{{widgets.gather_amount.Digits | plus: 0}}"
    kwd = export(make_flow(currency="KWD"))
    assert kwd["gather_minor"]["properties"]["number_of_digits"] == 3
    assert "prepend: '000' | slice: -3, 3" in kwd["capture_payment"]["properties"]["payment_amount"]
    star = export(make_flow(amount_entry="star-decimal"))
    assert (
        star["capture_payment"]["properties"]["payment_amount"]
        == "{{widgets.gather_amount.Digits | replace: '*', '.'}}"
    )
    fixed = export(make_flow(amount_source="fixed", fixed_amount_minor=4999))
    assert fixed["capture_payment"]["properties"]["payment_amount"] == "49.99"
    assert fixed["say_greeting"]["properties"]["say"].endswith(
        "The amount to pay is forty-nine dollars and ninety-nine cents."
    )
    assert fixed["say_greeting"]["transitions"][0]["next"] == "capture_payment"
    tokenize = export(make_flow(operation="tokenize", token_type="one-time"))
    assert "payment_amount" not in tokenize["capture_payment"]["properties"]
    assert tokenize["capture_payment"]["properties"]["payment_token_type"] == "one-time"


def test_a_flow_paid_by_reference_cannot_be_exported_to_studio(acme_api, make_flow):
    response = acme_api.get(f"/api/v1/payment-flows/{make_flow(amount_source='reference').uuid}/studio/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_exportable"


# --- IVR sessions in the pay-sessions API -----------------------------------------------


def test_ivr_sessions_are_listed_with_channel_ivr_and_cannot_be_driven_by_an_agent(acme_api, api_for, make_flow, world):
    flow = make_flow()
    payment = services.ivr_payment_start(flow=flow, call_sid="CA" + "b" * 32, amount_minor=1250)
    listed = acme_api.get("/api/v1/pay-sessions/?channel=ivr").json()["results"]
    assert [s["id"] for s in listed] == [str(payment.pay_session.uuid)]
    assert listed[0]["channel"] == "ivr"
    assert api_for(world.globex.raw_key).get(f"/api/v1/pay-sessions/{payment.pay_session.uuid}/").status_code == 404
    base = f"/api/v1/pay-sessions/{payment.pay_session.uuid}/"
    for action, body in (("capture", {"capture": "payment-card-number"}), ("complete", {}), ("cancel", {})):
        response = acme_api.post(base + f"{action}/", body, format="json")
        assert response.status_code == 409, action
        assert response.json()["error"]["code"] == "ivr_session"
    assert acme_api.get(base).json()["status"] == "created"
