"""The Stripe mirror: lists read in windows and pages, resumable, order-independent,
backing off on 429 and 5xx, a revoked key making the connector unhealthy, one sync per
connector at a time."""

import threading
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection

from payments.reconciliation import services, sync
from payments.reconciliation.models import (
    ConnectorSyncState,
    StripeBalanceTransaction,
    StripeCharge,
    StripePaymentIntent,
    StripeRefund,
    SyncCursor,
)
from payments.reconciliation.tasks import sync_connector
from tests.reconciliation.conftest import reconcile

pytestmark = pytest.mark.django_db


def _query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def _charges(stripe_objects, n: int, amount: int = 700) -> list[str]:
    return [stripe_objects.charge(amount=amount + i)["id"] for i in range(n)]


def test_charges_refunds_and_balance_transactions_are_mirrored_from_localstripe(dev, stripe_objects):
    intent = stripe_objects.payment(reference="6f1c7c2e-1a52-4e0b-9a43-2b8f3f0c9999", amount=2500)
    refund = stripe_objects.refund(intent["charge_id"], amount=700)

    result = reconcile(dev)

    assert result.complete and not result.error
    charge = StripeCharge.objects.get(connector=dev, stripe_id=intent["charge_id"])
    assert (charge.amount, charge.currency, charge.status, charge.payment_intent_id) == (
        2500,
        "USD",
        "succeeded",
        intent["id"],
    )
    assert str(charge.paydesk_ref) == "6f1c7c2e-1a52-4e0b-9a43-2b8f3f0c9999"
    assert charge.amount_refunded == 700
    txn = StripeBalanceTransaction.objects.get(connector=dev, stripe_id=charge.balance_transaction_id)
    assert (txn.amount, txn.fee, txn.net, txn.reporting_category, txn.source_id) == (
        2500,
        0,
        2500,
        "charge",
        charge.stripe_id,
    )
    assert txn.available_on is not None
    mirrored = StripeRefund.objects.get(connector=dev, stripe_id=refund["id"])
    assert (mirrored.charge_id, mirrored.amount, mirrored.status) == (charge.stripe_id, 700, "succeeded")
    refund_txn = StripeBalanceTransaction.objects.get(connector=dev, stripe_id=mirrored.balance_transaction_id)
    assert (refund_txn.amount, refund_txn.reporting_category) == (-700, "refund")
    # localstripe has no disputes list: that list is set aside, the connector stays healthy
    assert SyncCursor.objects.get(connector=dev, kind="disputes").supported is False
    assert ConnectorSyncState.objects.get(connector=dev).healthy


def test_the_nightly_run_also_mirrors_payment_intents(dev, stripe_objects):
    intent = stripe_objects.payment(reference="6f1c7c2e-1a52-4e0b-9a43-2b8f3f0c9998")
    reconcile(dev)
    assert not StripePaymentIntent.objects.filter(connector=dev).exists()  # not on the main path

    reconcile(dev, mode=sync.NIGHTLY)

    mirrored = StripePaymentIntent.objects.get(connector=dev, stripe_id=intent["id"])
    assert (mirrored.status, mirrored.latest_charge_id, mirrored.amount) == ("succeeded", intent["charge_id"], 1250)
    assert str(mirrored.paydesk_ref) == "6f1c7c2e-1a52-4e0b-9a43-2b8f3f0c9998"


def test_lists_are_read_in_pages_of_100_with_starting_after(dev, stripe_objects, tap):
    ids = _charges(stripe_objects, 230)

    reconcile(dev)

    pages = tap.lists("charges")
    assert len(pages) == 3
    assert [_query(u).get("limit") for u in pages] == ["100"] * 3
    assert "starting_after" not in _query(pages[0]) and all("starting_after" in _query(u) for u in pages[1:])
    assert set(StripeCharge.objects.filter(connector=dev).values_list("stripe_id", flat=True)) == set(ids)
    cursor = SyncCursor.objects.get(connector=dev, kind="charges")
    assert cursor.window_gt is None and cursor.high_water > 0

    tap.calls.clear()
    new = _charges(stripe_objects, 2, amount=9000)
    reconcile(dev)

    # the next window starts OVERLAP_SECONDS before the newest charge seen; what it
    # reads again is merged, never stored twice
    assert all(int(_query(u)["created[gt]"]) == cursor.high_water - sync.OVERLAP_SECONDS for u in tap.lists("charges"))
    assert StripeCharge.objects.filter(connector=dev).count() == 232
    assert set(StripeCharge.objects.filter(amount__gte=9000).values_list("stripe_id", flat=True)) == set(new)


def test_the_next_run_reads_only_what_is_new(dev, fake_stripe):
    template = fake_stripe.load("charges", "charges_with_fees.json")[0]
    old = 1767258000
    fake_stripe.data["charges"] = [{**template, "id": f"ch_old{i:04d}", "created": old + 60 * i} for i in range(230)]
    reconcile(dev)
    fake_stripe.requests.clear()
    fake_stripe.data["charges"] += [{**template, "id": f"ch_new{i}", "created": old + 60 * 230 + i} for i in range(2)]

    reconcile(dev)

    [page] = [u for u in fake_stripe.requests if "/v1/charges?" in u]
    assert int(_query(page)["created[gt]"]) == old + 60 * 229 - sync.OVERLAP_SECONDS
    assert StripeCharge.objects.filter(connector=dev).count() == 232


def test_stripe_unreachable_mid_sync_resumes_with_no_gap_and_no_duplicate(dev, stripe_objects, tap):
    ids = set(_charges(stripe_objects, 250))
    pages_seen = []

    def second_page_fails(url):
        if "/v1/charges?" in url:
            pages_seen.append(url)
            return "starting_after" in _query(url)  # page 1 answers, then Stripe is gone
        return False

    tap.fail = second_page_fails
    with pytest.raises(services.TransientStripeError):
        reconcile(dev)

    cursor = SyncCursor.objects.get(connector=dev, kind="charges")
    stored = set(StripeCharge.objects.filter(connector=dev).values_list("stripe_id", flat=True))
    assert len(stored) == 100 and cursor.starting_after in stored and cursor.window_gt is not None
    assert len(pages_seen) == 1 + sync.RETRY_ATTEMPTS  # page 1, then the backoff's attempts at page 2
    assert ConnectorSyncState.objects.get(connector=dev).healthy  # transient: noted, not unhealthy

    tap.fail, tap.calls[:] = None, []
    reconcile(dev)

    first = tap.lists("charges")[0]
    assert _query(first)["starting_after"] == cursor.starting_after  # resumed after the last stored page
    rows = list(StripeCharge.objects.filter(connector=dev).values_list("stripe_id", flat=True))
    assert len(rows) == len(set(rows)) == 250 and set(rows) == ids


def test_a_rate_limit_backs_off_exponentially_with_jitter_then_succeeds(dev, fake_stripe, monkeypatch):
    fake_stripe.load("charges", "charges_with_fees.json")
    fake_stripe.faults = [("charges", 429), ("charges", 429), ("charges", 503)]
    slept = []
    monkeypatch.setattr(sync, "sleep", slept.append)
    monkeypatch.setattr(sync._random, "uniform", lambda low, high: high)  # the top of each jitter range

    result = reconcile(dev)

    assert result.complete and not result.error
    assert slept == [1.0, 2.0, 4.0]  # base·2^attempt; the jitter draws from [0, that]
    assert StripeCharge.objects.filter(connector=dev).count() == 3


def test_the_backoff_is_jittered_and_capped():
    delays = [sync.backoff_delay(attempt) for attempt in range(12) for _ in range(20)]
    assert all(0 <= d <= sync.RETRY_CAP_SECONDS for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jittered: no two workers retry in step


def test_a_rate_limit_that_persists_is_left_to_celery_which_retries_with_backoff(dev, fake_stripe):
    fake_stripe.load("charges", "charges_with_fees.json")
    fake_stripe.faults = [("charges", 429)] * sync.RETRY_ATTEMPTS

    with pytest.raises(services.TransientStripeError):
        reconcile(dev)

    assert sync_connector.autoretry_for == (services.TransientStripeError,)
    assert sync_connector.retry_backoff and sync_connector.retry_jitter and sync_connector.acks_late
    assert reconcile(dev).complete  # the retry resumes and finishes
    assert StripeCharge.objects.filter(connector=dev).count() == 3


def test_a_revoked_key_marks_the_connector_unhealthy_without_retrying(dev, fake_stripe):
    fake_stripe.faults = [("charges", 401)]

    result = reconcile(dev)

    assert "rejected the key" in result.error
    state = ConnectorSyncState.objects.get(connector=dev)
    assert not state.healthy and state.last_error_permanent and "rejected the key" in state.last_error
    assert len(fake_stripe.requests) == 1  # permanent: no backoff
    assert (dev.tenant_id, dev.pk) not in services.connectors_due()  # the schedule leaves it for an hour

    assert reconcile(dev).complete  # the key works again: healthy again
    assert ConnectorSyncState.objects.get(connector=dev).healthy


@pytest.mark.parametrize("newest_first", [True, False])
def test_the_mirror_and_cursor_do_not_depend_on_the_list_order(dev, fake_stripe, newest_first):
    template = fake_stripe.load("charges", "charges_with_fees.json")[0]
    fake_stripe.data["charges"] = [
        {**template, "id": f"ch_order{i:04d}", "created": 1767258000 + i // 3, "balance_transaction": None}
        for i in range(230)
    ]
    fake_stripe.newest_first = newest_first

    reconcile(dev)

    assert StripeCharge.objects.filter(connector=dev).count() == 230
    assert SyncCursor.objects.get(connector=dev, kind="charges").high_water == 1767258000 + 229 // 3


def test_a_newest_first_list_without_a_server_filter_stops_at_the_cursor(dev, fake_stripe):
    template = fake_stripe.load("refunds", "charges_with_fees.json")[0]  # any object with id/created
    fake_stripe.data["refunds"] = [
        {**template, "object": "refund", "id": f"re_{i:04d}", "created": 1767258000 + 10 * i, "status": "succeeded"}
        for i in range(450)
    ]
    reconcile(dev)
    fake_stripe.requests.clear()
    fake_stripe.data["refunds"].append({**fake_stripe.data["refunds"][0], "id": "re_new", "created": 1767258000 + 9999})

    reconcile(dev)

    refund_pages = [u for u in fake_stripe.requests if "/v1/refunds?" in u]
    assert len(refund_pages) == 1  # the first page already reaches below the cursor
    assert StripeRefund.objects.filter(connector=dev, stripe_id="re_new").exists()


def test_a_second_sync_of_the_same_connector_is_refused_while_one_runs(dev):
    assert sync.lease_acquire(dev, "worker-a")
    with pytest.raises(sync.SyncBusy):
        reconcile(dev)
    assert sync_connector.delay(dev.tenant_id, dev.pk).get() == {"skipped": "busy"}
    sync.lease_release(dev, "worker-a")
    assert sync.lease_acquire(dev, "worker-b")


@pytest.mark.django_db(transaction=True)
def test_of_many_workers_racing_for_a_connector_exactly_one_gets_it(world):
    connector = world.acme.connectors["Stripe_Dev"]
    sync.sync_state(connector)
    barrier, won = threading.Barrier(6), []

    def worker(name):
        try:
            barrier.wait()
            if sync.lease_acquire(connector, name):
                won.append(name)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1


def test_an_expired_lease_can_be_taken_over(dev):
    assert sync.lease_acquire(dev, "crashed-worker", seconds=-1)  # it died; its lease has run out
    assert sync.lease_acquire(dev, "next-worker")
