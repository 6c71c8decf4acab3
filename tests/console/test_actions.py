"""Agent actions from the console against the whole stack: Paydesk on a live server, the
Twilio Pay simulator (callbacks signed and posted back) and localstripe. Each action is
the pay-session service the REST API calls, audited with the agent as actor."""

import re
import secrets

import pytest

from payments.console.models import ConsoleSettings
from payments.sessions.models import PaySession
from tenants.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

CARD = {
    "payment-card-number": "4242424242424242",
    "expiration-date": "1230",
    "security-code": "123",
    "postal-code": "94105",
}


def new_call() -> str:
    return "CA" + secrets.token_hex(16)


def _key(page: str) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page).group(1)


@pytest.fixture
def ann(client, agents):
    client.force_login(agents["ann"])
    return client


def start(client, call_sid, **fields):
    page = client.get("/console/").content.decode()
    body = {"call_sid": call_sid, "mode": "charge", "amount": "12.50", "currency": "USD", "connector": "Stripe_Dev"}
    body.update(fields, idempotency_key=_key(page))
    return client.post("/console/", body)


def act(client, session, action, **body):
    return client.post(f"/console/sessions/{session.uuid}/{action}", body, HTTP_ACCEPT="application/json")


def enter(client, desk, session, card=CARD):
    for field, digits in card.items():
        assert act(client, session, "capture", field=field).status_code == 200
        desk.sim.flush()
        desk.sim.press(session.call_sid, digits)
        desk.sim.flush()


def test_an_agent_starts_a_payment_and_every_action_is_audited_as_theirs(ann, desk, agents):
    call = new_call()
    response = start(ann, call, reference="INV-1042")
    session = PaySession.objects.get(call_sid=call)
    assert response.status_code == 302 and response["Location"] == f"/console/sessions/{session.uuid}/"
    assert session.started_by_user == agents["ann"] and session.payment_sid.startswith("PK")
    assert session.description == "INV-1042" and session.amount_minor == 1250
    enter(ann, desk, session)
    done = act(ann, session, "complete")
    assert done.status_code == 200
    desk.sim.flush()
    state = ann.get(f"/console/sessions/{session.uuid}/state", HTTP_ACCEPT="application/json").json()
    assert state["result"]["title"] == "Payment taken" and state["result"]["code"].startswith("pi_")
    actions = list(AuditEvent.objects.filter(target_id=str(session.uuid)).order_by("id").values_list("action", "actor"))
    assert actions == [
        ("console.session_started", "user:ann"),
        *[("console.capture_requested", "user:ann")] * 4,
        ("console.complete_requested", "user:ann"),
    ]
    sent = [r["form"].get("Capture") or r["form"].get("Status") for r in desk.sim.requests()[1:]]
    assert sent == [*CARD, "complete"]  # the same requests the REST API makes


def test_a_double_submitted_form_starts_one_session(ann, desk):
    page = ann.get("/console/").content.decode()
    body = {"call_sid": new_call(), "mode": "charge", "amount": "3.00", "currency": "USD", "connector": "Stripe_Dev"}
    first = ann.post("/console/", {**body, "idempotency_key": _key(page)})
    second = ann.post("/console/", {**body, "idempotency_key": _key(page)})
    assert first["Location"] == second["Location"]
    assert PaySession.objects.count() == 1


def test_a_refusal_by_twilio_is_shown_on_the_form_which_gets_a_new_key(ann, desk):
    call = new_call()
    start(ann, call)
    refused = start(ann, call, amount="6.00")  # a second session on the same call
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "already active" in page
    retry = ann.post(
        "/console/",
        {
            "call_sid": call,
            "mode": "charge",
            "amount": "6.00",
            "currency": "USD",
            "connector": "Stripe_Dev",
            "idempotency_key": _key(page),
        },
    )
    assert "This Idempotency-Key was already used" not in retry.content.decode()


def test_cancel_ends_the_session_and_is_audited_with_the_agent(ann, desk):
    call = new_call()
    start(ann, call)
    session = PaySession.objects.get(call_sid=call)
    response = act(ann, session, "cancel")
    assert response.status_code == 200
    assert response.json()["state"]["result"]["detail"] == "Cancelled by the agent."
    assert AuditEvent.objects.get(action="pay_session.cancelled").actor == "user:ann"
    assert desk.sim.requests()[-1]["form"]["Status"] == "cancel"
    again = act(ann, session, "capture", field="postal-code")
    assert again.status_code == 409 and again.json()["error"]["code"] == "session_ended"


def test_complete_while_fields_are_missing_is_refused_in_words(ann, desk):
    call = new_call()
    start(ann, call)
    session = PaySession.objects.get(call_sid=call)
    response = act(ann, session, "complete")
    assert response.status_code == 409
    assert response.json()["error"]["message"].startswith("Still required: payment-card-number")


def test_a_decline_then_another_card_on_the_same_call(ann, desk):
    call = new_call()
    start(ann, call, amount="20.00")
    declined = PaySession.objects.get(call_sid=call)
    enter(ann, desk, declined, {**CARD, "payment-card-number": "4000000000000002"})
    act(ann, declined, "complete")
    desk.sim.flush()
    state = ann.get(f"/console/sessions/{declined.uuid}/state", HTTP_ACCEPT="application/json").json()
    assert state["result"]["title"] == "Declined" and state["can_retry"]
    first = ann.post(f"/console/sessions/{declined.uuid}/retry")
    second = ann.post(f"/console/sessions/{declined.uuid}/retry")  # a double click
    retry = PaySession.objects.exclude(pk=declined.pk).get()
    assert first["Location"] == second["Location"] == f"/console/sessions/{retry.uuid}/"
    assert (retry.call_sid, retry.amount_minor, retry.connector_id) == (call, 2000, declined.connector_id)
    desk.sim.flush()
    enter(ann, desk, retry)
    act(ann, retry, "complete")
    desk.sim.flush()
    retry.refresh_from_db()
    assert retry.status == "succeeded"
    assert AuditEvent.objects.get(action="console.retry_started").changes == {"previous": str(declined.uuid)}


def test_only_a_failed_payment_can_be_tried_again(ann, desk):
    call = new_call()
    start(ann, call)
    session = PaySession.objects.get(call_sid=call)
    response = ann.post(f"/console/sessions/{session.uuid}/retry", HTTP_ACCEPT="application/json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_failed"


def test_without_script_an_action_posts_and_comes_back_to_the_page(ann, desk):
    call = new_call()
    start(ann, call)
    session = PaySession.objects.get(call_sid=call)
    response = ann.post(f"/console/sessions/{session.uuid}/complete", follow=True)
    assert response.redirect_chain == [(f"/console/sessions/{session.uuid}/", 302)]
    assert "Still required: payment-card-number" in response.content.decode()


# --- The form ---------------------------------------------------------------------------


def test_the_form_is_prefilled_from_the_query_string(ann, desk, world):
    page = ann.get(
        "/console/?call_sid=CA" + "b" * 32 + "&amount=12.50&currency=usd&connector=Stripe_Prod&reference=INV-1042"
    ).content.decode()
    assert 'value="CA' + "b" * 32 + '"' in page and 'value="12.50"' in page and 'value="USD"' in page
    assert 'value="INV-1042"' in page
    assert re.search(r'<option value="Stripe_Prod" selected>', page)


def test_connectors_are_the_active_ones_production_first(ann, desk, world):
    world.acme.connectors["Stripe_Stage"].is_active = False
    world.acme.connectors["Stripe_Stage"].save()
    page = ann.get("/console/").content.decode()
    options = re.findall(r'<option value="(Stripe_\w+)"', page)
    assert options == ["Stripe_Prod", "Stripe_Dev"]


@pytest.mark.parametrize(
    "fields,error",
    [
        ({"amount": "12.345"}, "USD amounts have at most 2 decimal places."),
        ({"amount": "1.5", "currency": "JPY"}, "JPY amounts have at most 0 decimal places."),
        ({"amount": ""}, "Enter the amount to charge"),
        ({"call_sid": "CA123"}, "Enter the Call SID"),
        ({"currency": "XXX"}, "is not an ISO 4217 currency code"),
    ],
)
def test_bad_form_input_is_explained_next_to_the_field_and_nothing_starts(ann, desk, fields, error):
    response = start(ann, fields.pop("call_sid", new_call()), **fields)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert not PaySession.objects.exists()


def test_the_tenant_decides_which_options_agents_may_choose(ann, desk, world):
    page = ann.get("/console/").content.decode()
    assert 'name="mode"' in page and 'name="payment_method"' not in page and 'name="security_code"' not in page
    ConsoleSettings.objects.create(
        tenant=world.acme.tenant, allow_tokenize=False, allow_ach=True, allow_skip_security_code=True
    )
    page = ann.get("/console/").content.decode()
    assert 'name="mode"' not in page and 'name="payment_method"' in page and 'name="security_code"' in page
    call = new_call()
    start(ann, call, security_code="")  # unticked
    assert PaySession.objects.get(call_sid=call).security_code is False


def test_saving_a_card_starts_a_tokenization(ann, desk):
    call = new_call()
    start(ann, call, mode="tokenize", amount="", token_type="one-time")
    session = PaySession.objects.get(call_sid=call)
    assert session.amount_minor is None and session.token_type == "one-time"
    page = ann.get(f"/console/sessions/{session.uuid}/").content.decode()
    assert "Save the card (one-time token)" in page


# --- Embedded ---------------------------------------------------------------------------


def _embedded(client, api, **body):
    """Start a session through a console link as partner software would, open the link."""
    body = {"call_sid": new_call(), "amount": "9.99", "connector": "Stripe_Dev", "agent_reference": "jane", **body}
    made = api.post("/api/v1/console-links/", body, format="json")
    assert made.status_code == 201, made.json()
    page = client.get(made.json()["url"].split("testserver", 1)[-1]).content.decode()
    token = re.search(r'data-token="([^"]+)"', page).group(1)
    return PaySession.objects.get(uuid=made.json()["session"]["id"]), token


def test_a_console_link_starts_the_session_and_its_page_acts_as_the_partners_agent(client, desk, api_for, world):
    api = api_for(world.acme.raw_key)
    session, token = _embedded(client, api, reference="INV-7")
    assert session.payment_sid.startswith("PK") and session.description == "INV-7"
    assert session.started_by_api_key == world.acme.api_key
    response = client.post(
        f"/console/embedded/{session.uuid}/capture",
        {"field": "payment-card-number"},
        HTTP_X_CONSOLE_TOKEN=token,
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200
    assert desk.sim.requests()[-1]["form"]["Capture"] == "payment-card-number"
    audit = AuditEvent.objects.get(action="console.capture_requested")
    assert audit.actor == f"console-link:jane (api_key:{world.acme.api_key.prefix})"
    assert audit.actor_api_key == world.acme.api_key
    assert not response.cookies


def test_an_embedded_form_post_without_script_answers_with_the_page(client, desk, api_for, world):
    session, token = _embedded(client, api_for(world.acme.raw_key))
    response = client.post(f"/console/embedded/{session.uuid}/complete", {"console_token": token})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Still required: payment-card-number" in page and 'data-token="' in page
    assert not response.cookies


def test_another_card_in_an_embedded_page_moves_its_token_to_the_new_session(client, desk, api_for, world):
    session, token = _embedded(client, api_for(world.acme.raw_key), amount="20.00")
    for field, digits in {**CARD, "payment-card-number": "4000000000000002"}.items():
        client.post(f"/console/embedded/{session.uuid}/capture", {"field": field}, HTTP_X_CONSOLE_TOKEN=token)
        desk.sim.flush()
        desk.sim.press(session.call_sid, digits)
        desk.sim.flush()
    client.post(f"/console/embedded/{session.uuid}/complete", HTTP_X_CONSOLE_TOKEN=token)
    desk.sim.flush()
    page = client.post(f"/console/embedded/{session.uuid}/retry", {"console_token": token}).content.decode()
    retry = PaySession.objects.exclude(pk=session.pk).get()
    new_token = re.search(r'data-token="([^"]+)"', page).group(1)
    assert f"/console/embedded/{retry.uuid}/state" in page
    state_url = f"/console/embedded/{retry.uuid}/state"
    assert client.get(state_url, HTTP_X_CONSOLE_TOKEN=new_token).status_code == 200
    assert client.get(state_url, HTTP_X_CONSOLE_TOKEN=token).status_code == 404  # bound to the first session
