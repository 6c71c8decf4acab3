"""What the session page says as Twilio's callbacks come in (fed through the same service
the callback endpoint uses), and the poll that keeps it current."""

import pytest

from payments.console.presenters import page_state
from payments.sessions.models import PayEvent, PaySession
from payments.sessions.services import pay_session_cancel
from tenants.services import Actor

pytestmark = pytest.mark.django_db

ALL = "PaymentCardNumber,ExpirationDate,SecurityCode,PostalCode"


def _state(client, session, etag=None):
    headers = {"HTTP_ACCEPT": "application/json"}
    if etag:
        headers["HTTP_IF_NONE_MATCH"] = etag
    return client.get(f"/console/sessions/{session.uuid}/state", **headers)


def _field(state, name):
    return next(f for f in state["fields"] if f["name"] == name)


def _requested(session, field):
    """What pay_session_capture records and sets when Twilio accepted the request."""
    PayEvent.objects.create(
        tenant=session.tenant,
        session=session,
        direction="out",
        kind="capture",
        dedupe_key=f"req-{field}-{PayEvent.objects.count()}",
        payload={"capture": field},
        http_status=202,
    )
    PaySession.objects.filter(pk=session.pk).update(status="capturing", capturing_field=field)
    session.refresh_from_db()


@pytest.fixture
def ann_session(agents, session_of):
    return session_of(agents["ann"])


@pytest.fixture
def ann(client, agents):
    client.force_login(agents["ann"])
    return client


def test_each_field_moves_from_waiting_to_being_entered_to_captured_with_masked_values(ann, ann_session, callbacks):
    s = ann_session
    state = _state(ann, s).json()
    assert [f["state"] for f in state["fields"]] == ["waiting"] * 4
    assert state["can_complete"] is False and state["missing_text"].startswith("Card number")

    _requested(s, "payment-card-number")
    callbacks(s, Capture="payment-card-number", PartialResult="false", Required=ALL)
    assert _field(_state(ann, s).json(), "payment-card-number")["state_text"] == "Being entered now"
    callbacks(s, Capture="payment-card-number", PartialResult="true", Required=ALL)
    assert _field(_state(ann, s).json(), "payment-card-number")["state_text"] == "Caller is typing…"
    callbacks(
        s,
        Capture="payment-card-number",
        PartialResult="false",
        Required="ExpirationDate,SecurityCode,PostalCode",
        PaymentCardNumber="xxxxxxxxxxxx4242",
        PaymentCardType="visa",
    )
    card = _field(_state(ann, s).json(), "payment-card-number")
    assert card["state"] == "captured" and card["icon"] == "✓"
    assert card["value_text"] == "Visa •••• 4242" and card["value_speech"] == "Visa ending 4242"
    assert card["request_label"] == "Request again"

    for field, required, extra in [
        ("expiration-date", "SecurityCode,PostalCode", {"ExpirationDate": "0530"}),
        ("security-code", "PostalCode", {"SecurityCode": "xxx"}),
        ("postal-code", "", {"PaymentCardPostalCode": "94105"}),
    ]:
        _requested(s, field)
        callbacks(s, Capture=field, PartialResult="false", Required=required, **extra)
    state = _state(ann, s).json()
    values = {f["name"]: f["value_text"] for f in state["fields"]}
    assert values == {
        "payment-card-number": "Visa •••• 4242",
        "expiration-date": "05/30",
        "security-code": "•••",
        "postal-code": "94105",
    }
    assert state["status_text"] == "Everything collected: ready to complete"
    assert state["can_complete"] is True and state["missing_text"] == ""


def test_an_invalid_attempt_says_why_in_words_until_the_field_is_asked_again(ann, ann_session, callbacks):
    s = ann_session
    _requested(s, "expiration-date")
    callbacks(s, Capture="expiration-date", PartialResult="false", Required=ALL, ErrorType="invalid-date")
    expiry = _field(_state(ann, s).json(), "expiration-date")
    assert expiry["state"] == "invalid" and expiry["state_text"] == "Invalid attempt"
    assert expiry["error_text"] == "Not a valid expiry date, or the card has expired"

    _requested(s, "postal-code")  # the agent moves on: the expiry keeps its reason
    expiry = _field(_state(ann, s).json(), "expiration-date")
    assert expiry["state"] == "invalid"

    _requested(s, "expiration-date")  # asked again: the old reason goes
    expiry = _field(_state(ann, s).json(), "expiration-date")
    assert expiry["state"] == "entering" and expiry["error_text"] == ""


def test_a_timeout_and_an_unknown_error_type_are_said_in_words(ann, ann_session, callbacks):
    s = ann_session
    _requested(s, "payment-card-number")
    callbacks(s, Capture="payment-card-number", PartialResult="false", Required=ALL, ErrorType="timeout")
    assert _field(_state(ann, s).json(), "payment-card-number")["error_text"] == "No digits were entered in time"
    _requested(s, "payment-card-number")
    callbacks(s, Capture="payment-card-number", PartialResult="false", Required=ALL, ErrorType="brand-new-error")
    assert _field(_state(ann, s).json(), "payment-card-number")["error_text"] == "Refused (brand-new-error)"


def test_the_poll_answers_304_while_nothing_changed_and_the_new_state_after_a_callback(ann, ann_session, callbacks):
    first = _state(ann, ann_session)
    etag = first["ETag"]
    assert first.status_code == 200 and etag == f'"{first.json()["version"]}"'
    assert "no-store" in first["Cache-Control"]
    unchanged = _state(ann, ann_session, etag)
    assert unchanged.status_code == 304 and unchanged.content == b""
    _requested(ann_session, "postal-code")
    callbacks(
        ann_session,
        Capture="postal-code",
        PartialResult="false",
        Required="PaymentCardNumber",
        PaymentCardPostalCode="1",
    )
    changed = _state(ann, ann_session, etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert changed.json()["last_event_id"] == PayEvent.objects.filter(direction="in").latest("id").pk


def test_any_change_of_the_row_or_its_events_is_a_new_version(ann, ann_session, callbacks):
    callbacks(ann_session, Capture="postal-code", PartialResult="true", Required=ALL)
    etag = _state(ann, ann_session)["ETag"]
    PaySession.objects.filter(pk=ann_session.pk).update(capturing_field="security-code")  # no event, no updated_at
    moved = _state(ann, ann_session, etag)
    assert moved.status_code == 200 and moved["ETag"] != etag
    etag = moved["ETag"]
    PayEvent.objects.filter(session=ann_session).update(applied_at=None)  # an event's applied time, alone
    assert _state(ann, ann_session, etag).status_code == 200


def test_a_success_shows_the_confirmation_code(ann, ann_session, callbacks):
    callbacks(ann_session, Result="success", PaymentConfirmationCode="pi_123")
    state = _state(ann, ann_session).json()
    assert state["result"] == {
        "kind": "success",
        "title": "Payment taken",
        "detail": "12.50 USD charged.",
        "code_label": "Confirmation code",
        "code": "pi_123",
        "icon": "✓",
    }
    assert state["terminal"] and not state["can_cancel"] and not state["can_retry"]
    assert all(not f["can_request"] for f in state["fields"])


def test_a_decline_says_why_and_offers_another_card(ann, ann_session, callbacks):
    callbacks(
        ann_session,
        Result="payment-connector-error",
        PayErrorCode="64012",
        PaymentError="Your card was declined.",
        ConnectorError="card_declined",
    )
    state = _state(ann, ann_session).json()
    assert state["result"]["title"] == "Declined"
    assert state["result"]["detail"] == "The card was declined: Your card was declined."
    assert state["can_retry"] is True
    page = ann.get(f"/console/sessions/{ann_session.uuid}/").content.decode()
    assert "Try another card" in page


@pytest.mark.parametrize(
    "result,detail",
    [("caller-hung-up", "The caller hung up"), ("caller-interrupted-with-star", "The caller pressed * to stop")],
)
def test_a_caller_ending_the_session_is_said_in_words(ann, ann_session, callbacks, result, detail):
    callbacks(ann_session, Result=result)
    state = _state(ann, ann_session).json()
    assert state["result"]["title"] == "Cancelled" and state["result"]["detail"] == detail


def test_a_cancel_by_the_agent_is_said_as_such(ann, ann_session, agents):
    ann_session.payment_sid = ""
    ann_session.save()
    pay_session_cancel(session=ann_session, actor=Actor.for_user(agents["ann"]))
    state = _state(ann, ann_session).json()
    assert state["result"]["detail"] == "Cancelled by the agent."


def test_the_timeline_tells_the_story_compactly(ann, ann_session, callbacks):
    _requested(ann_session, "expiration-date")
    callbacks(ann_session, Capture="expiration-date", PartialResult="true", Required=ALL)
    callbacks(ann_session, Capture="expiration-date", PartialResult="false", Required=ALL, ErrorType="invalid-date")
    _requested(ann_session, "expiration-date")
    callbacks(
        ann_session,
        Capture="expiration-date",
        PartialResult="false",
        Required="PaymentCardNumber",
        ExpirationDate="1230",
    )
    lines = [line["text"] for line in _state(ann, ann_session).json()["timeline"]]
    assert lines == [
        "Asked for the expiry date",
        "Expiry date: Not a valid expiry date, or the card has expired",
        "Asked for the expiry date",
        "Expiry date captured",
    ]


def test_the_state_is_the_same_whatever_order_the_callbacks_arrived_in(ann, agents, session_of, callbacks):
    """The page reads the folded session, so two sessions with the same callbacks in another
    order read the same (the version differs only by the session id)."""
    sessions = [session_of(agents["ann"]), session_of(agents["ann"])]
    params = [
        {"Capture": "payment-card-number", "PartialResult": "false", "Required": ALL},
        {"Capture": "payment-card-number", "PartialResult": "true", "Required": ALL},
        {
            "Capture": "payment-card-number",
            "PartialResult": "false",
            "Required": "ExpirationDate,SecurityCode,PostalCode",
            "PaymentCardNumber": "xxxxxxxxxxxx1111",
            "PaymentCardType": "visa",
        },
    ]
    stamps = ["2026-01-01T10:00:00.001Z", "2026-01-01T10:00:00.002Z", "2026-01-01T10:00:00.003Z"]
    for session, order in zip(sessions, ([0, 1, 2], [2, 0, 1]), strict=True):
        for i in order:
            callbacks(session, **{**params[i], "DateUpdated": stamps[i]})
    a, b = (page_state(s, list(s.events.all()), version="-")["fields"] for s in sessions)
    assert a == b and a[0]["value_text"] == "Visa •••• 1111"
