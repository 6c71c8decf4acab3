"""The Stripe mirror: lists read in windows and pages, resumable, order-independent,
backing off on 429 and 5xx, a revoked key making the connector unhealthy, one sync per
connector at a time."""

import threading
import uuid
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
    # every list of the run was read to its end, disputes included (none in this account)
    cursors = SyncCursor.objects.filter(connector=dev)
    assert set(cursors.values_list("kind", flat=True)) == set(sync.INCREMENTAL_KINDS)
    assert all(c.last_completed_at is not None and c.window_gt is None for c in cursors)
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

    tap.clear()
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


@pytest.mark.parametrize("kind", ["refunds", "disputes"])
def test_refunds_and_disputes_are_asked_of_stripe_from_the_cursor(dev, fake_stripe, kind):
    template = {**fake_stripe.load("disputes", "disputes.json")[0], "object": kind.removesuffix("s")}
    fake_stripe.data["disputes"] = []
    old = 1767258000
    fake_stripe.data[kind] = [{**template, "id": f"{kind}_{i:04d}", "created": old + 10 * i} for i in range(450)]
    reconcile(dev)
    high_water = SyncCursor.objects.get(connector=dev, kind=kind).high_water
    seen = SyncCursor.objects.get(connector=dev, kind=kind).objects_seen
    fake_stripe.requests.clear()
    fake_stripe.data[kind].append({**template, "id": f"{kind}_new", "created": high_water + 60})

    reconcile(dev)

    [page] = [u for u in fake_stripe.requests if f"/v1/{kind}?" in u]  # one page: Stripe filtered
    assert int(_query(page)["created[gt]"]) == high_water - sync.OVERLAP_SECONDS
    in_window = [o for o in fake_stripe.data[kind] if o["created"] > high_water - sync.OVERLAP_SECONDS]
    cursor = SyncCursor.objects.get(connector=dev, kind=kind)
    assert cursor.objects_seen - seen == len(in_window) < 100  # the new one and the overlap, no more
    assert cursor.high_water == high_water + 60


def test_every_list_is_read_incrementally_from_localstripe(dev, stripe_objects, tap):
    """Objects two days old, one a day old, then new ones: the second incremental run gets
    from Stripe only what is newer than the first run's newest object (minus the overlap),
    on each list the incremental run reads."""
    stripe_objects.clock(-2 * 86400)
    older = [stripe_objects.payment(reference=str(uuid.uuid4())) for _ in range(3)]
    stripe_objects.refund(older[0]["charge_id"], amount=100)
    stripe_objects.clock(-86400)
    last = stripe_objects.payment(reference=str(uuid.uuid4()))
    last_refund = stripe_objects.refund(last["charge_id"], amount=200)
    stripe_objects.clock(0)
    assert reconcile(dev).complete
    bounds = {
        kind: SyncCursor.objects.get(connector=dev, kind=kind).high_water - sync.OVERLAP_SECONDS
        for kind in ("charges", "refunds")
    }
    tap.clear()
    new = [stripe_objects.payment(reference=str(uuid.uuid4())) for _ in range(2)]
    new_refund = stripe_objects.refund(new[0]["charge_id"], amount=300)

    assert reconcile(dev).complete

    for kind, bound in bounds.items():
        assert tap.lists(kind) and all(int(_query(u)["created[gt]"]) == bound for u in tap.lists(kind))
    # the newest of the first run again (the overlap), then only what is new, newest first
    assert tap.listed("charges") == [new[1]["charge_id"], new[0]["charge_id"], last["charge_id"]]
    assert tap.listed("refunds") == [new_refund["id"], last_refund["id"]]
    assert StripeCharge.objects.filter(connector=dev).count() == 6
    assert StripeRefund.objects.filter(connector=dev).count() == 3


def test_the_nightly_run_reads_every_list_incrementally_from_localstripe(dev, stripe_objects, tap):
    """Objects older than the nightly window, then new ones: the second nightly run gets
    from Stripe only the newest of the first run again (the overlap) and what is new, on
    payment_intents, balance_transactions and payouts too."""
    made = {}
    for name, days_ago in (("ancient", sync.nightly_days() + 20), ("old", sync.nightly_days() + 10)):
        stripe_objects.clock(-days_ago * 86400)
        payment = stripe_objects.payment(reference=str(uuid.uuid4()))
        made[name] = (payment, stripe_objects.refund(payment["charge_id"], amount=100), stripe_objects.payout())
    stripe_objects.clock(0)
    assert reconcile(dev, mode=sync.NIGHTLY).complete
    assert StripePaymentIntent.objects.filter(connector=dev, stripe_id=made["ancient"][0]["id"]).exists()
    tap.clear()
    payment = stripe_objects.payment(reference=str(uuid.uuid4()))
    made["new"] = (payment, stripe_objects.refund(payment["charge_id"], amount=300), stripe_objects.payout())

    assert reconcile(dev, mode=sync.NIGHTLY).complete

    expected = [made["new"], made["old"]]  # newest first
    assert tap.listed("payment_intents") == [p["id"] for p, _, _ in expected]
    assert tap.listed("charges") == [p["charge_id"] for p, _, _ in expected]
    assert tap.listed("refunds") == [r["id"] for _, r, _ in expected]
    assert tap.listed("payouts") == [po["id"] for _, _, po in expected]
    sources = {p["charge_id"] for p, _, _ in expected} | {r["id"] for _, r, _ in expected}
    txns = StripeBalanceTransaction.objects.filter(connector=dev, source_id__in=sources)
    assert sorted(tap.listed("balance_transactions")) == sorted(txns.values_list("stripe_id", flat=True))
    assert len(tap.listed("balance_transactions")) == 4
    assert tap.listed("disputes") == []
    for kind in set(sync.NIGHTLY_KINDS) - {"disputes"}:  # no dispute seen yet: no lower bound
        assert tap.lists(kind) and all("created[gt]" in _query(u) for u in tap.lists(kind)), kind


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
