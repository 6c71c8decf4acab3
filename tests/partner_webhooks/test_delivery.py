"""Deliveries to a real receiver on loopback: Standard Webhooks signatures, retries at
controlled times (never slept), order per session, giving up, disabling."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from payments.outbox.models import Event
from payments.outbox.services import NewEvent, events_record
from payments.partner_webhooks import delivery
from payments.partner_webhooks.models import WebhookDelivery
from tenants.models import AuditEvent
from tests.partner_webhooks.conftest import HANG, endpoint_for, pump

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status


def record(tenant, *events: tuple[str, str, dict]) -> list[Event]:
    """Record events (type, ordering key, data) as a service would, in a transaction."""
    with transaction.atomic():
        return events_record(
            NewEvent(tenant_id=tenant.pk, type=type_, data=data, ordering_key=key) for type_, key, data in events
        )


def test_an_event_arrives_signed_per_standard_webhooks(world, receiver):
    _, secret = endpoint_for(world.acme.tenant, receiver.url)
    (event,) = record(world.acme.tenant, ("pay_session.updated", "pay_session:a", {"id": "a", "status": "ready"}))

    assert pump() == 1
    (got,) = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)  # raises unless the signature is right
    assert payload["type"] == "pay_session.updated" and payload["data"] == {"id": "a", "status": "ready"}
    assert payload["timestamp"].endswith("Z") and set(payload) == {"type", "timestamp", "data"}
    assert got.headers["webhook-id"] == event.public_id
    assert got.headers["content-type"] == "application/json"
    assert got.path == "/hooks/paydesk"
    with pytest.raises(Exception, match="signature"):
        Webhook(endpoint_for(world.acme.tenant, receiver.url)[1]).verify(got.body, got.headers)
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_status_code, row.last_response_body) == (
        Status.SUCCEEDED,
        1,
        200,
        '{"ok":true}',
    )


def _due(delivery_row):
    delivery_row.refresh_from_db()
    return delivery_row.next_attempt_at


def test_a_500_is_retried_with_backoff_at_the_time_it_is_due(world, receiver, settings):
    endpoint, secret = endpoint_for(world.acme.tenant, receiver.url)
    receiver.answer(500, 500)
    record(world.acme.tenant, ("pay_session.updated", "pay_session:a", {"n": 1}))
    t0 = timezone.now()
    pump(now=t0)
    row = WebhookDelivery.objects.get()
    first_due = _due(row)
    base = settings.PAYDESK_WEBHOOKS_RETRY_BASE_SECONDS
    assert row.status == Status.PENDING and row.attempts == 1 and row.last_status_code == 500
    assert t0 + timedelta(seconds=base * 0.8) <= first_due <= t0 + timedelta(seconds=base * 1.2)

    assert pump(now=first_due - timedelta(seconds=1)) == 0  # not due yet: nothing is sent
    pump(now=first_due)
    second_due = _due(row)
    assert row.attempts == 2 and second_due - first_due >= timedelta(seconds=base * 2 * 0.8)  # doubled

    pump(now=second_due)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == (Status.SUCCEEDED, 3, 200)
    assert [r.answered for r in receiver.received] == [500, 500, 200]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # the same message each time
    assert len(receiver.verify_all(secret)) == 3


def test_a_timeout_is_retried(world, receiver, settings):
    settings.PAYDESK_WEBHOOKS_READ_TIMEOUT = 0.3
    endpoint_for(world.acme.tenant, receiver.url)
    receiver.answer(HANG)
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 1}))
    pump()
    row = WebhookDelivery.objects.get()
    assert (row.status, row.last_status_code, row.last_error) == (Status.PENDING, None, "timed out")
    pump(now=_due(row))
    row.refresh_from_db()
    assert row.status == Status.SUCCEEDED and row.attempts == 2


def test_a_refused_connection_is_retried(world, receiver):
    endpoint_for(world.acme.tenant, receiver.url)
    receiver.stop()
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 1}))
    pump()
    row = WebhookDelivery.objects.get()
    assert (row.status, row.last_error) == (Status.PENDING, "connection refused")
    receiver.start()  # the same port, listening again
    pump(now=_due(row))
    row.refresh_from_db()
    assert row.status == Status.SUCCEEDED and len(receiver.received) == 1


def test_only_the_first_bytes_of_an_answer_are_read_and_kept(world, receiver):
    receiver.answer_body = b"x" * 200_000
    endpoint_for(world.acme.tenant, receiver.url)
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 1}))
    pump()
    row = WebhookDelivery.objects.get()
    assert row.status == Status.SUCCEEDED and row.last_response_body == "x" * 1024


def test_a_card_number_in_an_answer_is_masked_before_it_is_kept(world, receiver):
    receiver.answer_body = b"echo 4242 4242 4242 4242"
    endpoint_for(world.acme.tenant, receiver.url)
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 1}))
    pump()
    assert "4242 4242 4242 4242" not in WebhookDelivery.objects.get().last_response_body


def test_a_redirect_is_not_followed_and_counts_as_a_failure(world, receiver):
    receiver.redirect_to = receiver.url.replace("/hooks/paydesk", "/elsewhere")
    receiver.answer(302)
    endpoint_for(world.acme.tenant, receiver.url)
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 1}))
    pump()
    row = WebhookDelivery.objects.get()
    assert (row.status, row.last_status_code, row.last_error) == (Status.PENDING, 302, "HTTP 302")
    assert [r.path for r in receiver.received] == ["/hooks/paydesk"]


def test_events_of_one_session_wait_for_an_earlier_one_still_retrying(world, receiver):
    endpoint_for(world.acme.tenant, receiver.url)
    refused = []

    def refuse_a1_once(payload):  # session A's first event, the first time it comes
        if payload["data"] == {"s": "A", "n": 1} and not refused:
            refused.append(payload)
            return 503
        return None

    receiver.answer_for = refuse_a1_once
    record(world.acme.tenant, ("pay_session.created", "pay_session:A", {"s": "A", "n": 1}))
    record(world.acme.tenant, ("pay_session.created", "pay_session:B", {"s": "B", "n": 1}))
    record(world.acme.tenant, ("pay_session.updated", "pay_session:A", {"s": "A", "n": 2}))
    record(world.acme.tenant, ("pay_session.succeeded", "pay_session:A", {"s": "A", "n": 3}))
    record(world.acme.tenant, ("pay_session.updated", "pay_session:B", {"s": "B", "n": 2}))
    pump()
    acked = [(r.payload["data"]["s"], r.payload["data"]["n"]) for r in receiver.acknowledged()]
    assert acked == [("B", 1), ("B", 2)]  # B goes on; A's later events wait behind its first
    waiting = WebhookDelivery.objects.filter(status=Status.PENDING, attempts=0).count()
    assert waiting == 2

    first = WebhookDelivery.objects.get(attempts=1, status=Status.PENDING)
    pump(now=_due(first))
    acked = [(r.payload["data"]["s"], r.payload["data"]["n"]) for r in receiver.acknowledged()]
    assert acked[2:] == [("A", 1), ("A", 2), ("A", 3)]


def test_a_delivery_fails_once_the_retry_window_is_over(world, receiver, settings):
    endpoint, _ = endpoint_for(world.acme.tenant, receiver.url)
    receiver.answer(*[500] * 100)
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 1}))
    t0 = timezone.now()
    pump(now=t0)
    row = WebhookDelivery.objects.get()
    window_end = t0 + timedelta(seconds=settings.PAYDESK_WEBHOOKS_RETRY_WINDOW_SECONDS)
    # A success elsewhere on the endpoint keeps it from being disabled meanwhile.
    endpoint.failing_since = None
    while row.status == Status.PENDING:
        assert row.next_attempt_at <= window_end
        pump(now=row.next_attempt_at)
        row.refresh_from_db()
        type(endpoint).objects.filter(pk=endpoint.pk).update(failing_since=None)
    assert row.status == Status.FAILED and row.completed_at == window_end
    assert 15 <= row.attempts <= 30  # exponential to 6 h: about twenty tries in three days


def test_an_endpoint_failing_for_three_days_is_disabled_and_its_owners_told(world, receiver, settings):
    endpoint, _ = endpoint_for(world.acme.tenant, receiver.url)
    receiver.answer(*[500] * 100)
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 1}))
    record(world.acme.tenant, ("pay_session.updated", "pay_session:x", {"n": 2}))
    t0 = timezone.now()
    pump(now=t0)
    assert WebhookDelivery.objects.filter(status=Status.PENDING).count() == 2
    endpoint.refresh_from_db()
    assert endpoint.failing_since == t0

    two_days = t0 + timedelta(days=2)
    pump(now=two_days)
    endpoint.refresh_from_db()
    assert endpoint.enabled and not mail.outbox

    later = t0 + timedelta(days=3, seconds=1)
    pump(now=later)
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "failed" in endpoint.disabled_reason
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {Status.FAILED}
    audit = AuditEvent.objects.get(action="webhook_endpoint.disabled")
    assert audit.tenant == world.acme.tenant and audit.target_id == str(endpoint.uuid)
    (message,) = mail.outbox
    assert message.to == [world.acme.owner.email] and endpoint.url in message.body
    assert "whsec_" not in message.body

    record(world.acme.tenant, ("pay_session.updated", "", {"n": 3}))
    pump(now=later)
    assert WebhookDelivery.objects.count() == 2  # a disabled endpoint gets no new deliveries


def test_a_success_ends_the_failure_streak(world, receiver):
    endpoint, _ = endpoint_for(world.acme.tenant, receiver.url)
    receiver.answer(500)
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 1}))
    t0 = timezone.now()
    pump(now=t0)
    endpoint.refresh_from_db()
    assert endpoint.failing_since == t0
    pump(now=WebhookDelivery.objects.get().next_attempt_at)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_a_rotated_secret_signs_beside_the_new_one_for_a_day(world, receiver):
    from payments.partner_webhooks.services import webhook_endpoint_rotate_secret
    from tenants.services import Actor

    endpoint, old = endpoint_for(world.acme.tenant, receiver.url)
    endpoint, new = webhook_endpoint_rotate_secret(endpoint=endpoint, actor=Actor.system("test"))
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 1}))
    pump()
    (during,) = receiver.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(during.body, during.headers)  # a receiver not switched yet
    Webhook(new).verify(during.body, during.headers)  # and one that has

    type(endpoint).objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )  # a day has passed
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 2}))
    pump()
    after = receiver.received[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(old).verify(after.body, after.headers)


def test_an_endpoint_gets_only_the_types_it_wants_and_only_events_after_it_existed(world, receiver):
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 0}))  # before the endpoint
    endpoint_for(world.acme.tenant, receiver.url, event_types=["pay_session.succeeded"])
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 1}), ("pay_session.succeeded", "", {"n": 2}))
    record(world.globex.tenant, ("pay_session.succeeded", "", {"n": 3}))  # another tenant's
    pump()
    assert [r.payload["data"]["n"] for r in receiver.received] == [2]


def test_a_lost_sender_is_replaced_once_its_lease_runs_out(world, receiver):
    endpoint, _ = endpoint_for(world.acme.tenant, receiver.url)
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 1}))
    delivery.events_dispatch()
    t0 = timezone.now()
    _, claimed = delivery._claim(endpoint.pk, now=t0, batch=10)  # a worker claims it, then dies
    assert len(claimed) == 1 and pump(now=t0) == 0  # nobody else sends it meanwhile
    pump(now=t0 + delivery.lease())
    row = WebhookDelivery.objects.get()
    assert row.status == Status.SUCCEEDED and row.attempts == 2 and len(receiver.received) == 1


def test_the_backoff_doubles_to_its_cap_with_jitter(settings):
    import random

    t0 = timezone.now()
    rng = random.Random(1)
    delays = [
        (delivery.next_attempt(first_attempt_at=t0, attempts=n, now=t0, rng=rng) - t0).total_seconds()
        for n in range(1, 16)
    ]
    base, cap = settings.PAYDESK_WEBHOOKS_RETRY_BASE_SECONDS, settings.PAYDESK_WEBHOOKS_RETRY_MAX_DELAY_SECONDS
    for n, seconds in enumerate(delays, start=1):
        nominal = min(base * 2 ** (n - 1), cap)
        assert nominal * 0.8 <= seconds <= nominal * 1.2
    assert len({round(d) for d in delays[-5:]}) > 1  # jittered, not all the same
    end = t0 + timedelta(seconds=settings.PAYDESK_WEBHOOKS_RETRY_WINDOW_SECONDS)
    assert delivery.next_attempt(first_attempt_at=t0, attempts=3, now=end) is None


def test_one_follow_up_is_queued_per_endpoint_for_the_next_retry(world, receiver, settings):
    endpoint, _ = endpoint_for(world.acme.tenant, receiver.url)
    receiver.answer(500)
    record(world.acme.tenant, ("pay_session.updated", "", {"n": 1}))
    t0 = timezone.now()
    pump(now=t0)
    due = WebhookDelivery.objects.get().next_attempt_at

    assert delivery.follow_up_at(endpoint_id=endpoint.pk, now=t0) == due
    assert delivery.follow_up_at(endpoint_id=endpoint.pk, now=t0) is None  # already queued for that time
    assert delivery.follow_up_at(endpoint_id=endpoint.pk, now=due) is None  # nothing ahead: it is due now
    settings.PAYDESK_WEBHOOKS_COUNTDOWN_MAX_SECONDS = 1
    later = due + timedelta(seconds=1)  # the queued one has passed; the retry is too far off for a countdown
    WebhookDelivery.objects.update(next_attempt_at=later + timedelta(hours=1))
    assert delivery.follow_up_at(endpoint_id=endpoint.pk, now=later) is None  # the sweep's


def test_the_sql_fan_out_makes_the_deliveries_the_orm_one_would(world, receiver):
    wants_all, _ = endpoint_for(world.acme.tenant, receiver.url)
    wants_one, _ = endpoint_for(world.acme.tenant, receiver.url, event_types=["pay_session.failed"])
    endpoint_for(world.globex.tenant, receiver.url)
    off, _ = endpoint_for(world.acme.tenant, receiver.url, enabled=False)
    events = record(
        world.acme.tenant, ("pay_session.updated", "pay_session:a", {}), ("pay_session.failed", "pay_session:a", {})
    )
    ids = [e.pk for e in events]

    def made():
        return sorted(WebhookDelivery.objects.values_list("endpoint_id", "event_id", "ordering_key", "next_attempt_at"))

    with transaction.atomic():
        by_sql = delivery._fan_out_sql(ids, now=timezone.now())
        sql_rows = made()
        transaction.set_rollback(True)
    with transaction.atomic():
        by_orm = delivery._fan_out_orm(ids, now=timezone.now())
        orm_rows = made()
        transaction.set_rollback(True)
    assert by_sql == by_orm == {(world.acme.tenant.pk, wants_all.pk), (world.acme.tenant.pk, wants_one.pk)}
    assert sql_rows == orm_rows and len(sql_rows) == 3
