"""Refunds through the API, against localstripe: full and partial refunds, the amount
never above what remains, idempotent retries, Stripe refusing and Stripe unreachable
(before and in the middle of a request), sessions that cannot be refunded, scopes and
tenants. Each test counts what Stripe really did (the refunds localstripe holds)."""

import json

import pytest

from payments.refunds.models import Refund
from tenants.models import AuditEvent, Scope
from tenants.services import Actor, api_key_create
from tests.factories import PaySessionFactory
from tests.refunds.conftest import REFUNDS, error, form_of, paid, refund_rows, refund_via_api, stripe_refunds

pytestmark = pytest.mark.django_db


def test_a_full_refund_returns_the_whole_payment_through_stripe(acme_api, dev, stripe_proxy, stripe_objects):
    session, intent = paid(dev, stripe_objects, amount=2000)

    response = refund_via_api(acme_api, session, key="full-1", reason="requested_by_customer", note="Wrong size")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["amount"], body["amount_minor"], body["currency"], body["status"]) == (
        "20.00",
        2000,
        "USD",
        "succeeded",
    )
    assert body["pay_session"] == str(session.uuid) and body["origin"] == "paydesk"
    assert body["requested_by"].startswith("api_key:") and not body["made_outside_paydesk"]
    [made] = stripe_refunds(stripe_objects, intent)
    assert made["id"] == body["stripe_refund_id"] and made["amount"] == 2000 and made["status"] == "succeeded"
    assert made["metadata"] == {
        "paydesk_refund": body["id"],
        "paydesk_session": str(session.uuid),
        "paydesk_tenant": "acme",
    }
    assert made["reason"] == "requested_by_customer"
    [sent] = stripe_proxy.posts("/v1/refunds")
    assert form_of(sent)["payment_intent"] == intent["id"] and form_of(sent)["amount"] == "2000"
    assert sent.headers["Idempotency-Key"].startswith("paydesk-refund-")
    shown = acme_api.get(f"/api/v1/pay-sessions/{session.uuid}/").json()
    assert (shown["amount_refunded"], shown["refundable_amount"]) == ("20.00", "0.00")


def test_two_partial_refunds_then_a_third_above_what_remains_is_refused(acme_api, dev, stripe_proxy, stripe_objects):
    session, intent = paid(dev, stripe_objects, amount=2000)

    first = refund_via_api(acme_api, session, amount="5.00")
    second = refund_via_api(acme_api, session, amount="10.00", reason="duplicate")
    third = refund_via_api(acme_api, session, amount="5.01")

    assert (first.status_code, second.status_code) == (201, 201)
    assert third.status_code == 400
    assert error(third)["code"] == "amount_too_large"
    assert error(third)["fields"]["amount"] == ["5.01 USD is more than what remains to refund (5.00 USD of 20.00 USD)."]
    assert sorted(r["amount"] for r in stripe_refunds(stripe_objects, intent)) == [500, 1000]
    assert len(stripe_proxy.posts("/v1/refunds")) == 2  # the refused one never reached Stripe
    shown = acme_api.get(f"/api/v1/pay-sessions/{session.uuid}/").json()
    assert (shown["amount_refunded"], shown["refundable_amount"]) == ("15.00", "5.00")

    rest = refund_via_api(acme_api, session)  # no amount: what remains

    assert rest.status_code == 201 and rest.json()["amount"] == "5.00"
    nothing_left = refund_via_api(acme_api, session)
    assert nothing_left.status_code == 409 and error(nothing_left)["code"] == "fully_refunded"
    assert sum(r["amount"] for r in stripe_refunds(stripe_objects, intent)) == 2000


def test_a_retry_with_the_same_key_and_body_returns_the_same_refund(acme_api, dev, stripe_proxy, stripe_objects):
    session, intent = paid(dev, stripe_objects, amount=2000)

    first = refund_via_api(acme_api, session, key="once", amount="7.50", note="goodwill")
    again = refund_via_api(acme_api, session, key="once", amount="7.50", note="goodwill")
    other = refund_via_api(acme_api, session, key="once", amount="7.00", note="goodwill")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert other.status_code == 409 and error(other)["code"] == "idempotency_key_reused"
    assert [r["amount"] for r in stripe_refunds(stripe_objects, intent)] == [750]
    assert len(stripe_proxy.posts("/v1/refunds")) == 1


def test_the_same_key_on_another_session_is_another_request(acme_api, dev, stripe_proxy, stripe_objects):
    one, _ = paid(dev, stripe_objects)
    two, _ = paid(dev, stripe_objects)

    assert refund_via_api(acme_api, one, key="k", amount="1.00").status_code == 201
    response = refund_via_api(acme_api, two, key="k", amount="1.00")

    assert response.status_code == 409 and error(response)["code"] == "idempotency_key_reused"


def test_stripe_refusing_answers_with_stripes_message_and_records_the_failure(
    acme_api, dev, stripe_proxy, stripe_objects
):
    session, intent = paid(dev, stripe_objects, amount=2000)
    stripe_objects.refund(intent["charge_id"])  # refunded in Stripe's dashboard; Paydesk has not synced yet

    response = refund_via_api(acme_api, session, key="late", amount="20.00")
    replay = refund_via_api(acme_api, session, key="late", amount="20.00")

    assert response.status_code == 502
    assert error(response)["code"] == "stripe_refused"
    assert "has already been refunded" in error(response)["message"]
    assert replay.status_code == 502 and error(replay) == error(response)
    [refund] = refund_rows(session)
    assert refund.status == Refund.Status.FAILED and "already been refunded" in refund.failure_reason
    assert len(stripe_refunds(stripe_objects, intent)) == 1  # only the dashboard's
    assert AuditEvent.objects.filter(action="refund.failed", target_id=str(refund.uuid)).count() == 1
    shown = acme_api.get(f"/api/v1/pay-sessions/{session.uuid}/").json()
    assert shown["refundable_amount"] == "20.00"  # a failed refund holds nothing


def test_stripe_unreachable_answers_503_and_a_retry_with_the_same_key_refunds_once(
    acme_api, dev, stripe_objects, settings
):
    session, intent = paid(dev, stripe_objects, amount=2000)
    settings.STRIPE_API_BASE_URL = "http://127.0.0.1:9"  # nothing listens: Stripe is down

    down = refund_via_api(acme_api, session, key="retry-me", amount="12.00")

    assert down.status_code == 503
    assert error(down)["code"] == "stripe_unavailable"
    assert "retry with the same Idempotency-Key (retry-me)" in error(down)["message"]
    [pending] = refund_rows(session)
    assert (pending.status, pending.stripe_refund_id) == (Refund.Status.PENDING, "")
    assert stripe_refunds(stripe_objects, intent) == []
    held = refund_via_api(acme_api, session, key="another", amount="8.01")
    assert held.status_code == 400  # the pending refund holds its 12.00

    settings.STRIPE_API_BASE_URL = stripe_objects.url
    retried = refund_via_api(acme_api, session, key="retry-me", amount="12.00")

    assert retried.status_code == 201 and retried.json()["id"] == str(pending.uuid)
    assert retried.json()["status"] == "succeeded"
    assert [r["amount"] for r in stripe_refunds(stripe_objects, intent)] == [1200]


def test_stripe_going_away_mid_request_then_a_retry_makes_exactly_one_stripe_refund(
    acme_api, dev, stripe_proxy, stripe_objects
):
    session, intent = paid(dev, stripe_objects, amount=2000)
    # Stripe makes the refund, and the connection drops before Paydesk hears the answer.
    stripe_proxy.drop.append(("POST", "/v1/refunds", True))

    lost = refund_via_api(acme_api, session, key="mid", amount="12.00")

    assert lost.status_code == 503 and error(lost)["code"] == "stripe_unavailable"
    assert len(stripe_refunds(stripe_objects, intent)) == 1  # Stripe did it
    [pending] = refund_rows(session)
    assert (pending.status, pending.stripe_refund_id) == (Refund.Status.PENDING, "")

    retried = refund_via_api(acme_api, session, key="mid", amount="12.00")
    replayed = refund_via_api(acme_api, session, key="mid", amount="12.00")

    assert retried.status_code == 201 and replayed.status_code == 200
    [made] = stripe_refunds(stripe_objects, intent)  # localstripe ignores idempotency keys: still one
    assert retried.json()["stripe_refund_id"] == made["id"] and retried.json()["status"] == "succeeded"
    assert len(stripe_proxy.posts("/v1/refunds")) == 1  # found by its metadata, not made again


def test_stripe_going_away_before_the_request_then_a_retry_makes_it(acme_api, dev, stripe_proxy, stripe_objects):
    session, intent = paid(dev, stripe_objects, amount=2000)
    stripe_proxy.drop.append(("POST", "/v1/refunds", False))

    assert refund_via_api(acme_api, session, key="early").status_code == 503
    assert stripe_refunds(stripe_objects, intent) == []

    retried = refund_via_api(acme_api, session, key="early")

    assert retried.status_code == 201
    assert [r["amount"] for r in stripe_refunds(stripe_objects, intent)] == [2000]
    keys = {s.headers["Idempotency-Key"] for s in stripe_proxy.posts("/v1/refunds")}
    assert len(keys) == 1  # both attempts carried the same Stripe key


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "failed", "result": "payment-connector-error", "payment_confirmation_code": ""},
        {"status": "cancelled", "result": "", "payment_confirmation_code": ""},
        {"status": "succeeded", "amount_minor": None, "payment_token": "tok_1", "token_type": "reusable"},
    ],
    ids=["failed", "cancelled", "tokenize-only"],
)
def test_a_session_without_a_payment_cannot_be_refunded(acme_api, world, fields):
    session = PaySessionFactory(tenant=world.acme.tenant, connector=world.acme.connectors["Stripe_Dev"], **fields)

    response = refund_via_api(acme_api, session)

    assert response.status_code == 409 and error(response)["code"] == "not_refundable"
    assert not Refund.objects.exists()
    assert AuditEvent.objects.filter(action="refund.refused", target_id=str(session.uuid)).exists()
    shown = acme_api.get(f"/api/v1/pay-sessions/{session.uuid}/").json()
    if session.amount_minor is None:
        assert (shown["amount_refunded"], shown["refundable_amount"]) == (None, None)
    else:
        assert shown["refundable_amount"] == "0.00"


@pytest.mark.parametrize("amount", ["0", "-1", "1.234", "abc"])
def test_a_bad_amount_is_refused_before_anything_is_stored(acme_api, dev, stripe_objects, amount):
    session, _ = paid(dev, stripe_objects)
    response = refund_via_api(acme_api, session, amount=amount)
    assert response.status_code == 400 and "amount" in error(response)["fields"]
    assert not Refund.objects.exists()


def test_refunding_needs_the_refund_scope_which_payments_write_does_not_give(world, api_for, dev, stripe_objects):
    session, intent = paid(dev, stripe_objects)
    tenant = world.acme.tenant
    _, writer = api_key_create(
        tenant=tenant, name="w", scopes=[Scope.PAYMENTS_READ, Scope.PAYMENTS_WRITE], actor=Actor.system("t")
    )
    _, refunder = api_key_create(tenant=tenant, name="r", scopes=[Scope.PAYMENTS_REFUND], actor=Actor.system("t"))

    refused = refund_via_api(api_for(writer), session)
    allowed_to_read = api_for(writer).get(REFUNDS.format(session.uuid))
    made = refund_via_api(api_for(refunder), session)
    cannot_read = api_for(refunder).get(REFUNDS.format(session.uuid))

    assert refused.status_code == 403 and error(refused)["code"] == "missing_scope"
    assert "payments:refund" in error(refused)["message"]
    assert allowed_to_read.status_code == 200
    assert made.status_code == 201 and len(stripe_refunds(stripe_objects, intent)) == 1
    assert cannot_read.status_code == 403
    assert api_for(refunder).get("/api/v1/refunds/").status_code == 403


def test_another_tenants_session_and_refunds_do_not_exist(world, api_for, stripe_objects, stripe_proxy):
    theirs, _ = paid(world.globex.connectors["Stripe_Dev"], stripe_objects)
    globex = api_for(world.globex.raw_key)
    their_refund = refund_via_api(globex, theirs, amount="1.00").json()
    acme = api_for(world.acme.raw_key)

    posted = refund_via_api(acme, theirs, amount="1.00")
    listed = acme.get(REFUNDS.format(theirs.uuid))
    one = acme.get(f"/api/v1/refunds/{their_refund['id']}/")
    everything = acme.get("/api/v1/refunds/")

    assert (posted.status_code, listed.status_code, one.status_code) == (404, 404, 404)
    assert {error(r)["code"] for r in (posted, listed, one)} == {"not_found"}
    assert everything.status_code == 200 and everything.json()["results"] == []
    assert Refund.objects.count() == 1 and len(stripe_proxy.posts("/v1/refunds")) == 1


def test_refund_lists_filter_by_status_connector_and_time(acme_api, world, dev, stripe_proxy, stripe_objects):
    stage = world.acme.connectors["Stripe_Stage"]
    one, _ = paid(dev, stripe_objects)
    two, intent_two = paid(stage, stripe_objects)
    ok = refund_via_api(acme_api, one, amount="1.00").json()
    stripe_objects.refund(intent_two["charge_id"])
    failed = refund_via_api(acme_api, two, amount="1.00")
    assert failed.status_code == 502
    failed_id = str(Refund.objects.get(status="failed").uuid)

    def ids(**params):
        response = acme_api.get("/api/v1/refunds/", params)
        assert response.status_code == 200, response.json()
        return {r["id"] for r in response.json()["results"]}

    assert ids() == {ok["id"], failed_id}
    assert ids(status="succeeded") == {ok["id"]}
    assert ids(status="failed") == {failed_id}
    assert ids(connector="Stripe_Stage") == {failed_id}
    assert ids(created_after="2000-01-01T00:00:00Z", created_before="2000-01-02T00:00:00Z") == set()
    assert ids(created_after=ok["created_at"]) == {ok["id"], failed_id}
    assert ids(pay_session=str(one.uuid)) == {ok["id"]}
    assert acme_api.get(f"/api/v1/refunds/{ok['id']}/").json() == ok
    assert [r["id"] for r in acme_api.get(REFUNDS.format(one.uuid)).json()] == [ok["id"]]


def test_the_pay_session_list_shows_refund_totals_with_one_query_for_the_page(
    acme_api, dev, stripe_proxy, stripe_objects, django_assert_max_num_queries
):
    sessions = [paid(dev, stripe_objects, amount=1000)[0] for _ in range(3)]
    refund_via_api(acme_api, sessions[0], amount="2.50")
    refund_via_api(acme_api, sessions[2])

    listed = {s["id"]: s for s in acme_api.get("/api/v1/pay-sessions/").json()["results"]}

    assert [(listed[str(s.uuid)]["amount_refunded"], listed[str(s.uuid)]["refundable_amount"]) for s in sessions] == [
        ("2.50", "7.50"),
        ("0.00", "10.00"),
        ("10.00", "0.00"),
    ]
    with django_assert_max_num_queries(8):  # auth, key touch, page, reconciliation, refunds: not one per row
        acme_api.get("/api/v1/pay-sessions/")


def test_every_refund_and_every_failure_is_audited(acme_api, dev, stripe_proxy, stripe_objects, settings):
    session, intent = paid(dev, stripe_objects, amount=2000)
    refund_via_api(acme_api, session, amount="5.00")
    refund_via_api(acme_api, session, amount="50.00")  # refused: above what remains
    settings.STRIPE_API_BASE_URL = "http://127.0.0.1:9"
    refund_via_api(acme_api, session, amount="1.00")

    actions = list(
        AuditEvent.objects.filter(action__startswith="refund.").order_by("id").values_list("action", flat=True)
    )

    assert actions == [
        "refund.created",
        "refund.succeeded",
        "refund.refused",
        "refund.created",
        "refund.stripe_unreachable",
    ]
    assert all(e.actor.startswith("api_key:") for e in AuditEvent.objects.filter(action__startswith="refund."))


def test_a_card_number_in_a_note_is_masked_before_it_is_stored(acme_api, dev, stripe_proxy, stripe_objects):
    session, _ = paid(dev, stripe_objects)

    response = refund_via_api(acme_api, session, amount="1.00", note="card 4242 4242 4242 4242 again")

    assert response.status_code == 201
    assert response.json()["note"] == "card xxxxxxxxxxxx4242 again"
    assert "4242 4242" not in Refund.objects.get().note
    audited = AuditEvent.objects.filter(target_id=response.json()["id"]).values_list("changes", flat=True)
    assert all("4242 4242" not in str(changes) for changes in audited)


def test_the_openapi_document_stays_valid_and_describes_refunds(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    schema = out.read_text()
    assert "/api/v1/pay-sessions/{id}/refunds/:" in schema and "/api/v1/refunds/{id}/:" in schema
    assert "RefundReasonEnum:" in schema and "refundable_amount:" in schema


def test_a_refund_records_its_partner_events_in_the_sessions_order(acme_api, dev, stripe_proxy, stripe_objects):
    from payments.outbox.models import Event

    session, _ = paid(dev, stripe_objects, amount=2000)
    body = refund_via_api(acme_api, session, key="evt-1", amount="5.00").json()

    events = list(Event.objects.filter(ordering_key=f"pay_session:{session.uuid}").order_by("id"))
    refund_events = [e for e in events if e.type.startswith("refund.")]
    assert [e.type for e in refund_events] == ["refund.created", "refund.succeeded"]
    data = json.loads(refund_events[-1].payload)["data"]
    assert (data["id"], data["status"], data["amount"]) == (body["id"], "succeeded", "5.00")


def test_a_refund_stripe_refuses_is_announced_as_failed(acme_api, dev, stripe_proxy, stripe_objects):
    from payments.outbox.models import Event

    session, intent = paid(dev, stripe_objects, amount=2000)
    stripe_objects.refund(intent["charge_id"])  # already refunded in Stripe's dashboard
    assert refund_via_api(acme_api, session, key="evt-2", amount="20.00").status_code == 502

    types = list(Event.objects.filter(type__startswith="refund.").order_by("id").values_list("type", flat=True))
    assert types == ["refund.created", "refund.failed"]
