"""Two refunds racing for the last euro, in two threads with real transactions: the
second waits for the first on the session's row lock, then sees its reservation."""

import threading
import time

import pytest
from django.db import connection, connections

from payments.refunds import services
from tests.refunds.conftest import paid, refund_via_api, stripe_refunds

pytestmark = pytest.mark.django_db(transaction=True)
DEADLINE_S = 20


def _backends_waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_two_refunds_racing_for_the_last_euro_one_succeeds(world, api_for, dev, stripe_objects, monkeypatch):
    raw = world.acme.raw_key
    session, intent = paid(dev, stripe_objects, amount=1000)
    assert refund_via_api(api_for(raw), session, amount="9.00").status_code == 201  # one euro left

    # The first request to reach the check stops there, holding the session's lock, until
    # the second is seen waiting for that lock.
    inside, go, entered = threading.Event(), threading.Event(), []
    counted = services.held_minor

    def held_minor(*, session_id):
        value = counted(session_id=session_id)
        if not entered:
            entered.append(threading.get_ident())
            inside.set()
            assert go.wait(timeout=DEADLINE_S)
        return value

    monkeypatch.setattr(services, "held_minor", held_minor)
    answers = {}

    def refund(name: str) -> None:
        try:
            answers[name] = refund_via_api(api_for(raw), session, amount="1.00")
        finally:
            connections.close_all()

    first = threading.Thread(target=refund, args=("first",))
    first.start()
    assert inside.wait(timeout=DEADLINE_S)
    second = threading.Thread(target=refund, args=("second",))
    second.start()
    deadline = time.monotonic() + DEADLINE_S
    while _backends_waiting_on_a_lock() == 0:
        assert time.monotonic() < deadline, "the second refund never waited for the session's lock"
        time.sleep(0.01)  # poll interval
    go.set()
    first.join(DEADLINE_S)
    second.join(DEADLINE_S)

    assert answers["first"].status_code == 201
    assert answers["second"].status_code == 400
    assert answers["second"].json()["error"]["code"] == "amount_too_large"
    assert sorted(r["amount"] for r in stripe_refunds(stripe_objects, intent)) == [100, 900]


def test_refunds_racing_without_a_pause_never_exceed_the_payment(world, api_for, dev, stripe_objects):
    raw = world.acme.raw_key
    session, intent = paid(dev, stripe_objects, amount=1000)
    start, answers = threading.Barrier(4), []

    def refund() -> None:
        try:
            start.wait(timeout=DEADLINE_S)
            answers.append(refund_via_api(api_for(raw), session, amount="4.00").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refund) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S)

    assert sorted(answers) == [201, 201, 400, 400]
    assert sum(r["amount"] for r in stripe_refunds(stripe_objects, intent)) == 800
