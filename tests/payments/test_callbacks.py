"""The status-callback endpoint: signature, storage, dedupe, order, and the tripwire."""

import random

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from core.cardsafe import tripwire_count
from payments.sessions import services
from payments.sessions.models import PayEvent, PaySession
from tests.factories import PaySessionFactory


def _url(session):
    return f"http://testserver/twilio/pay/{session.callback_token}/status/"


def post_callback(client, session, params, *, token=None, signature=None):
    token = token or session.tenant_auth_token
    signature = signature if signature is not None else RequestValidator(token).compute_signature(_url(session), params)
    return client.post(_url(session), params, HTTP_X_TWILIO_SIGNATURE=signature)


@pytest.fixture
def session(world):
    s = PaySessionFactory(tenant=world.acme.tenant, connector=world.acme.connectors["Stripe_Dev"])
    s.tenant_auth_token = world.acme.auth_token
    return s


def _common(session, **extra):
    return {
        "AccountSid": session.tenant.twilio_account_sid,
        "CallSid": session.call_sid,
        "Sid": session.payment_sid,
        "PaymentConnector": "Stripe_Dev",
        "PaymentMethod": "credit-card",
        "ChargeAmount": "12.50",
        "DateCreated": "2026-11-21T10:00:00.000Z",
        "TokenType": "",
        **extra,
    }


def card_flow(session) -> list[dict]:
    """The callbacks of a whole successful session, in the order Twilio sends them."""
    c = lambda t, **kw: _common(session, DateUpdated=f"2026-11-21T10:00:{t:02d}.000Z", **kw)  # noqa: E731
    return [
        _common(session),
        c(
            1,
            Capture="payment-card-number",
            PartialResult="false",
            Required="PaymentCardNumber,ExpirationDate,SecurityCode,PostalCode",
        ),
        c(
            2,
            Capture="payment-card-number",
            PartialResult="true",
            PaymentCardNumber="xxxxxxxx",
            Required="PaymentCardNumber,ExpirationDate,SecurityCode,PostalCode",
        ),
        c(
            3,
            Capture="payment-card-number",
            PartialResult="false",
            PaymentCardNumber="xxxxxxxxxxxx4242",
            PaymentCardType="visa",
            Required="ExpirationDate,SecurityCode,PostalCode",
        ),
        c(
            4,
            Capture="expiration-date",
            PartialResult="false",
            ErrorType="invalid-date",
            PaymentCardNumber="xxxxxxxxxxxx4242",
            Required="ExpirationDate,SecurityCode,PostalCode",
        ),
        c(
            5,
            Capture="expiration-date",
            PartialResult="false",
            ExpirationDate="1230",
            PaymentCardNumber="xxxxxxxxxxxx4242",
            Required="SecurityCode,PostalCode",
        ),
        c(
            6,
            Capture="security-code",
            PartialResult="false",
            SecurityCode="xxx",
            ExpirationDate="1230",
            Required="PostalCode",
        ),
        c(7, Capture="postal-code", PartialResult="false", PaymentCardPostalCode="94105", Required=""),
        c(
            9,
            Result="success",
            PaymentConfirmationCode="pi_123",
            PaymentCardNumber="xxxxxxxxxxxx4242",
            ExpirationDate="1230",
            PaymentCardType="visa",
            PaymentToken="",
            ProfileId="",
        ),
    ]


def test_a_signed_callback_is_stored_and_applied(client, session, django_capture_on_commit_callbacks):
    flow = card_flow(session)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_callback(client, session, flow[3])
    assert response.status_code == 204
    session.refresh_from_db()
    assert session.status == "capturing"
    assert session.card_last4 == "4242" and session.card_type == "visa"
    assert session.required_fields == ["expiration-date", "security-code", "postal-code"]
    event = session.events.get()
    assert event.applied_at is not None and event.payload["PaymentCardNumber"] == "xxxxxxxxxxxx4242"


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", None])
def test_a_missing_or_wrong_signature_is_403_and_stores_nothing(client, session, signature):
    params = card_flow(session)[3]
    if signature is None:  # signed with another tenant's token
        response = post_callback(client, session, params, token="0" * 32)
    else:
        response = post_callback(client, session, params, signature=signature)
    assert response.status_code == 403
    assert not PayEvent.objects.exists()
    session.refresh_from_db()
    assert session.card_last4 == ""


def test_a_tampered_parameter_breaks_the_signature(client, session):
    params = card_flow(session)[-1]
    signature = RequestValidator(session.tenant_auth_token).compute_signature(_url(session), params)
    response = client.post(
        _url(session),
        {**params, "Result": "success", "PaymentConfirmationCode": "pi_evil"},
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    assert response.status_code == 403
    assert not PayEvent.objects.exists()


def test_another_tenants_callback_url_cannot_write_into_this_session(client, world, session):
    """Signed with globex's token for acme's session URL: refused."""
    response = post_callback(client, session, card_flow(session)[3], token=world.globex.auth_token)
    assert response.status_code == 403
    assert not PayEvent.objects.exists()


def test_an_unknown_callback_url_is_404(client, session):
    response = client.post("/twilio/pay/not-a-token/status/", {"AccountSid": "AC"})
    assert response.status_code == 404


def test_a_duplicate_changes_nothing(client, session, django_capture_on_commit_callbacks):
    params = card_flow(session)[3]
    with django_capture_on_commit_callbacks(execute=True):
        assert post_callback(client, session, params).status_code == 204
    session.refresh_from_db()
    before = (session.updated_at, PayEvent.objects.count())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert post_callback(client, session, params).status_code == 204
    assert callbacks == []  # nothing enqueued
    session.refresh_from_db()
    assert (session.updated_at, PayEvent.objects.count()) == before


def test_an_older_update_does_not_overwrite_a_newer_one(client, session, django_capture_on_commit_callbacks):
    flow = card_flow(session)
    with django_capture_on_commit_callbacks(execute=True):
        post_callback(client, session, flow[5])  # expiry captured at :05
        post_callback(client, session, flow[4])  # the invalid-date attempt from :04 arrives late
    session.refresh_from_db()
    assert session.card_expiration == "1230"
    assert session.last_error_type == ""
    assert session.required_fields == ["security-code", "postal-code"]


def test_a_final_result_is_final(client, session, django_capture_on_commit_callbacks):
    flow = card_flow(session)
    failure = {
        **flow[-1],
        "Result": "payment-connector-error",
        "PaymentConfirmationCode": "",
        "DateUpdated": "2026-11-21T10:00:08.000Z",
        "PaymentError": "card declined",
    }
    for params in (flow[-1], failure, flow[3]):  # each applied as it arrives
        with django_capture_on_commit_callbacks(execute=True):
            post_callback(client, session, params)
    session.refresh_from_db()
    assert session.status == "succeeded"
    assert session.result == "success" and session.payment_confirmation_code == "pi_123"
    assert session.payment_error == ""
    late = PayEvent.objects.filter(session=session, late=True)
    assert late.count() == 2


def test_timeout_and_input_timeout_are_the_same_error(client, session, django_capture_on_commit_callbacks):
    params = _common(
        session,
        DateUpdated="2026-11-21T10:00:01.000Z",
        Capture="payment-card-number",
        PartialResult="false",
        ErrorType="timeout",
        Required="PaymentCardNumber,ExpirationDate,SecurityCode,PostalCode",
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_callback(client, session, params)
    session.refresh_from_db()
    assert session.last_error_type == "input-timeout"
    assert session.capturing_field == "payment-card-number"


def test_a_card_mask_in_any_format_yields_only_the_last_four(client, session, django_capture_on_commit_callbacks):
    params = _common(
        session,
        DateUpdated="2026-11-21T10:00:01.000Z",
        Capture="payment-card-number",
        PartialResult="false",
        PaymentCardNumber="xxxx-xxxxxx-x4001",
        PaymentCardType="amex",
        Required="ExpirationDate",
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_callback(client, session, params)
    session.refresh_from_db()
    assert session.card_last4 == "4001"
    assert session.required_fields == ["expiration-date"]


def test_a_full_card_number_is_masked_before_storage_and_counted(client, session, django_capture_on_commit_callbacks):
    before = tripwire_count()
    params = _common(
        session,
        DateUpdated="2026-11-21T10:00:01.000Z",
        Capture="payment-card-number",
        PartialResult="false",
        PaymentCardNumber="4242424242424242",
        Required="ExpirationDate",
        PaymentError="card 4000 0566 5566 5556 declined",
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert post_callback(client, session, params).status_code == 204
    stored = str(PayEvent.objects.get().payload)
    assert "4242424242424242" not in stored and "4000 0566 5566 5556" not in stored
    session.refresh_from_db()
    assert session.card_number_masked == "xxxxxxxxxxxx4242" and session.card_last4 == "4242"
    assert tripwire_count() == before + 2


def test_a_signature_checked_against_the_public_url_behind_a_proxy(
    client, session, settings, django_capture_on_commit_callbacks
):
    settings.PAYDESK_PUBLIC_BASE_URL = "https://pay.example.com"
    params = card_flow(session)[3]
    public = f"https://pay.example.com/twilio/pay/{session.callback_token}/status/"
    signature = RequestValidator(session.tenant_auth_token).compute_signature(public, params)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url(session), params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 204


def _observable(session: PaySession) -> dict:
    session.refresh_from_db()
    fields = [
        "status",
        "capturing_field",
        "required_fields",
        "last_error_type",
        "card_number_masked",
        "card_last4",
        "card_type",
        "card_expiration",
        "postal_code_value",
        "result",
        "payment_confirmation_code",
    ]
    return {f: getattr(session, f) for f in fields}


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), stop=st.integers(min_value=1, max_value=9))
def test_duplicated_and_shuffled_callbacks_reach_the_in_order_state(world, seed, stop):
    """Property: whatever the order and however often callbacks arrive, a session ends in
    the state in-order delivery gives."""
    rng = random.Random(seed)
    connector = world.acme.connectors["Stripe_Dev"]
    in_order = PaySessionFactory(tenant=world.acme.tenant, connector=connector, status="capturing")
    shuffled = PaySessionFactory(tenant=world.acme.tenant, connector=connector, status="capturing")
    for target in (in_order, shuffled):
        flow = card_flow(target)[:stop]
        if target is shuffled:
            flow = flow + [rng.choice(flow) for _ in range(rng.randint(0, len(flow)))]
            rng.shuffle(flow)
        for params in flow:
            services.pay_callback_record(tenant_id=target.tenant_id, session_id=target.pk, raw_params=params)
            if rng.random() < 0.7:  # the applier may run after each callback, or later for several
                services.pay_events_apply_pending()
        services.pay_events_apply_pending()
    assert _observable(shuffled) == _observable(in_order)
    assert not PayEvent.objects.filter(session=shuffled, applied_at__isnull=True).exists()


def test_a_burst_of_callbacks_wakes_one_apply_run_and_nothing_is_left_unapplied(
    client, session, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    flow = card_flow(session)
    cache.add(services.APPLY_FLAG, 1)  # an apply run is already queued
    with django_capture_on_commit_callbacks(execute=True):
        for params in flow[1:4]:
            assert post_callback(client, session, params).status_code == 204
    assert PayEvent.objects.filter(session=session, applied_at__isnull=True).count() == 3  # no second run
    # the queued run applies everything stored so far, then lets go of the flag
    assert services.pay_events_apply_pending().applied == 3
    assert cache.get(services.APPLY_FLAG) is None
    with django_capture_on_commit_callbacks(execute=True):
        post_callback(client, session, flow[5])  # arrives after the run: wakes a new one (eager here)
    session.refresh_from_db()
    assert session.card_expiration == "1230"
    assert not PayEvent.objects.filter(session=session, applied_at__isnull=True).exists()


def test_callbacks_stored_while_a_run_works_are_applied_by_it_before_it_lets_go(world, monkeypatch):
    from django.core.cache import cache

    connector = world.acme.connectors["Stripe_Dev"]
    first, second = (PaySessionFactory(tenant=world.acme.tenant, connector=connector) for _ in range(2))
    services.pay_callback_record(tenant_id=first.tenant_id, session_id=first.pk, raw_params=card_flow(first)[3])
    real_batch, batches = services._apply_batch, []

    def batch_then_a_callback_arrives(*, limit):
        done = real_batch(limit=limit)
        if not batches:  # while the run works, a callback is stored; the flag is held: no new run
            services.pay_callback_record(
                tenant_id=second.tenant_id, session_id=second.pk, raw_params=card_flow(second)[3]
            )
            services._wake_applier()
        batches.append(done)
        return done

    monkeypatch.setattr(services, "_apply_batch", batch_then_a_callback_arrives)
    cache.add(services.APPLY_FLAG, 1)  # this run was woken
    assert services.pay_events_apply_pending().applied == 2
    assert batches == [(1, 1), (1, 1)]
    assert not PayEvent.objects.filter(applied_at__isnull=True).exists()
    assert cache.get(services.APPLY_FLAG) is None


def test_one_apply_run_folds_the_callbacks_of_every_session_with_news(world):
    sessions = [
        PaySessionFactory(tenant=w.tenant, connector=w.connectors["Stripe_Dev"], status="capturing")
        for w in (world.acme, world.acme, world.acme, world.globex)
    ]
    for s in sessions:
        for params in card_flow(s)[:6]:
            assert services.pay_callback_record(tenant_id=s.tenant_id, session_id=s.pk, raw_params=params)
    # Two sessions per transaction: the run goes on until nothing is left.
    assert services.pay_events_apply_pending(batch_sessions=2).applied == 6 * len(sessions)
    for s in sessions:
        s.refresh_from_db()
        assert (s.card_last4, s.card_expiration, s.status) == ("4242", "1230", "capturing")
        assert s.required_fields == ["security-code", "postal-code"]
    assert not PayEvent.objects.filter(applied_at__isnull=True).exists()
    # nothing left: a run finds nothing to do
    assert services.pay_events_apply_pending() == services.ApplyRun(applied=0, more_waiting=False)


def test_a_long_apply_run_hands_over_to_a_fresh_one(world, monkeypatch):
    connector = world.acme.connectors["Stripe_Dev"]
    sessions = [PaySessionFactory(tenant=world.acme.tenant, connector=connector, status="capturing") for _ in range(3)]
    for s in sessions:
        services.pay_callback_record(tenant_id=s.tenant_id, session_id=s.pk, raw_params=card_flow(s)[3])
    monkeypatch.setattr(services, "APPLY_MAX_BATCHES", 1)
    monkeypatch.setattr(services, "APPLY_BATCH_SESSIONS", 1)
    # The service applies one batch of one session and says more is waiting; it does not
    # enqueue anything itself ...
    assert services.pay_events_apply_pending() == services.ApplyRun(applied=1, more_waiting=True)
    assert PayEvent.objects.filter(applied_at__isnull=True).count() == 2
    # ... the task does: each run hands over to a fresh one (eager here) until none is left.
    from payments.sessions.tasks import apply_pending_pay_events

    assert apply_pending_pay_events.apply().get() == 1
    assert not PayEvent.objects.filter(applied_at__isnull=True).exists()


def test_a_duplicate_is_told_apart_and_the_stored_row_is_what_the_model_would_write(session):
    params = card_flow(session)[3]
    assert services.pay_callback_record(tenant_id=session.tenant_id, session_id=session.pk, raw_params=params)
    assert not services.pay_callback_record(tenant_id=session.tenant_id, session_id=session.pk, raw_params=params)
    (event,) = PayEvent.objects.filter(session=session)
    assert (event.tenant_id, event.direction, event.kind) == (session.tenant_id, "in", "status-callback")
    assert event.payload == {k: v for k, v in params.items() if v != ""}
    assert event.occurred_at.isoformat() == "2026-11-21T10:00:03+00:00"
    assert event.received_at is not None
    defaults = (event.applied_at, event.late, event.idempotency_key, event.response, event.http_status)
    assert defaults == (None, False, "", {}, None)


def test_the_callback_target_is_the_session_its_token_names(world):
    from payments.sessions.selectors import pay_session_for_callback

    session = PaySessionFactory(tenant=world.globex.tenant, connector=world.globex.connectors["Stripe_Dev"])
    target = pay_session_for_callback(token=session.callback_token)
    assert (target.session_id, target.session_uuid, target.tenant_id) == (session.pk, session.uuid, session.tenant_id)
    assert target.twilio_account_sid == world.globex.tenant.twilio_account_sid
    assert target.twilio_auth_token_ciphertext == world.globex.tenant.twilio_auth_token_ciphertext
    assert pay_session_for_callback(token=session.callback_token.swapcase() + "!") is None


def test_callbacks_whose_wake_up_was_lost_are_applied_by_the_beat_backstop(client, session):
    from django.core.cache import cache

    from payments.sessions.tasks import apply_pending_pay_events

    cache.add(services.APPLY_FLAG, 1)  # a run was queued, then lost with the broker
    post_callback(client, session, card_flow(session)[3])
    event = PayEvent.objects.get(session=session)
    assert event.applied_at is None
    assert apply_pending_pay_events.apply().get() == 1  # what beat runs once a minute
    session.refresh_from_db()
    assert session.card_last4 == "4242"
    assert PayEvent.objects.get(pk=event.pk).applied_at is not None


def test_the_beat_entry_of_the_removed_stale_sweep_is_dropped_by_its_migration(db):
    import importlib

    from django.apps import apps
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every_minute = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    for name, task in [
        ("apply-stale-pay-events", "payments.tasks.apply_stale_pay_events"),
        ("apply-pending-pay-events", "payments.tasks.apply_pending_pay_events"),
    ]:
        PeriodicTask.objects.create(name=name, task=task, interval=every_minute)
    migration = importlib.import_module("payments.sessions.migrations.0003_drop_stale_sweep_beat_entry")
    migration.drop(apps, None)
    assert list(PeriodicTask.objects.filter(name__contains="pay-events").values_list("name", flat=True)) == [
        "apply-pending-pay-events"
    ]
