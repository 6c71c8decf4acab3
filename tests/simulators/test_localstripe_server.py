"""The localstripe runner (simulators/localstripe_server.py) lists as Stripe documents
(https://docs.stripe.com/api/pagination): newest first, `created` filters on every list
Paydesk reads, pages with `limit` and `starting_after`, and a disputes list (empty).

Objects are dated with the runner's test clock (`POST /_config/clock`), so each batch
below has its own `created` second without any sleeping. Every expected answer is
computed from the unfiltered list the runner gave."""

import pytest
import requests

AUTH = ("sk_test_x", "")
# Each list, and how many objects one batch of `_batch` adds to it.
LISTS = {
    "payment_intents": 2,
    "charges": 2,
    "refunds": 1,
    "balance_transactions": 3,
    "balance/history": 3,
    "payouts": 1,
    "events": None,  # localstripe's own events: several per object
}
BATCH_OFFSETS = (-3 * 3600, -2 * 3600, -3600, 0)  # seconds from now, oldest batch first


class Runner:
    def __init__(self, url: str):
        self.url = url

    def post(self, path: str, data: dict) -> dict:
        response = requests.post(f"{self.url}/v1/{path}", data=data, auth=AUTH, timeout=10)
        assert response.ok, response.text
        return response.json()

    def get(self, path: str, **params) -> requests.Response:
        return requests.get(f"{self.url}/v1/{path}", params=params, auth=AUTH, timeout=10)

    def walk(self, path: str, limit: int, **params) -> tuple[list[dict], int]:
        """Every object of the list, page after page with starting_after; and the pages."""
        objects, pages, after = [], 0, {}
        while True:
            response = self.get(path, limit=limit, **params, **after)
            assert response.ok, response.text
            page = response.json()
            assert page["object"] == "list" and len(page["data"]) <= limit
            objects += page["data"]
            pages += 1
            if not page["has_more"]:
                return objects, pages
            assert page["data"]
            after = {"starting_after": page["data"][-1]["id"]}

    def clock(self, offset: int) -> None:
        requests.post(f"{self.url}/_config/clock", data={"offset": str(offset)}, timeout=10).raise_for_status()


def _batch(runner: Runner) -> None:
    """Two confirmed PaymentIntents (each a charge and a balance transaction), a refund
    of the first (a balance transaction too), and a payout."""
    charges = []
    for amount in (1100, 2200):
        intent = runner.post(
            "payment_intents",
            {"amount": str(amount), "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
        )
        charge = intent["latest_charge"]
        charges.append(charge["id"] if isinstance(charge, dict) else charge)
    runner.post("refunds", {"charge": charges[0], "amount": "300"})
    runner.post("payouts", {"amount": "500", "currency": "eur"})


@pytest.fixture
def batches(localstripe):
    """Four batches, an hour apart (the `localstripe` fixture flushed the store and the
    clock before, and the next test's flush clears them)."""
    runner = Runner(localstripe)
    for offset in BATCH_OFFSETS:
        runner.clock(offset)
        _batch(runner)
    runner.clock(0)
    return runner


def _created(objects: list[dict]) -> list[int]:
    return [o["created"] for o in objects]


def _ids(objects: list[dict]) -> list[str]:
    return [o["id"] for o in objects]


def test_every_list_is_newest_first_and_pages_with_starting_after(batches):
    for path, per_batch in LISTS.items():
        everything, pages = batches.walk(path, limit=100)
        assert pages == 1, path
        if per_batch is not None:
            assert len(everything) == per_batch * len(BATCH_OFFSETS), path
        assert _created(everything) == sorted(_created(everything), reverse=True), path

        paged, pages = batches.walk(path, limit=2)

        assert _ids(paged) == _ids(everything), path
        assert pages == -(-len(everything) // 2), path


def _seconds_of_batches(objects: list[dict]) -> list[tuple[int, int]]:
    """The first and last `created` of each batch, oldest first (batches are an hour
    apart; one batch takes a second or two)."""
    spans: list[list[int]] = []
    for second in sorted(set(_created(objects))):
        if spans and second - spans[-1][1] < 600:
            spans[-1][1] = second
        else:
            spans.append([second, second])
    return [(first, last) for first, last in spans]


COMPARE = {
    "gt": lambda created, bound: created > bound,
    "gte": lambda created, bound: created >= bound,
    "lt": lambda created, bound: created < bound,
    "lte": lambda created, bound: created <= bound,
    "eq": lambda created, bound: created == bound,
}


@pytest.mark.parametrize(
    "bounds",
    [
        {"gt": 0},  # after the first batch
        {"gte": 2},  # from the third batch on
        {"lt": 2},  # before the third batch
        {"lte": 1},  # up to the second batch
        {"gt": 0, "lte": 2},  # the second and third batches
        {"eq": 1},  # created=<ts>: the second batch's first second
    ],
    ids=lambda bounds: "&".join(f"{name}{batch}" for name, batch in bounds.items()),
)
def test_created_filters_every_list_across_pages(batches, bounds):
    for path in LISTS:
        everything, _ = batches.walk(path, limit=100)
        spans = _seconds_of_batches(everything)
        assert len(spans) == len(BATCH_OFFSETS), path
        # "after batch i" and "up to batch i" bound on its last second, "from" and "before" on its first
        values = {name: spans[i][1] if name in ("gt", "lte") else spans[i][0] for name, i in bounds.items()}
        params = {f"created[{name}]": value for name, value in values.items() if name != "eq"}
        if "eq" in values:
            params["created"] = values["eq"]
        expected = [o for o in everything if all(COMPARE[name](o["created"], v) for name, v in values.items())]
        assert 0 < len(expected) < len(everything), path

        filtered, pages = batches.walk(path, limit=2, **params)

        assert _ids(filtered) == _ids(expected), path
        assert pages == -(-len(expected) // 2), path


def test_starting_after_counts_from_an_object_the_filter_leaves_out(batches):
    everything, _ = batches.walk("payment_intents", limit=100)
    newest, *rest = everything
    after_newest = [o for o in rest if o["created"] < newest["created"]]

    response = batches.get(
        "payment_intents", limit=100, starting_after=newest["id"], **{"created[lt]": newest["created"]}
    )

    assert response.ok, response.text
    assert _ids(response.json()["data"]) == _ids(after_newest)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"created": "yesterday"}, "created"),
        ({"created[after]": "1"}, "created[after]"),
        ({"created[gt]": ""}, "created[gt]"),
    ],
)
def test_a_malformed_created_filter_is_refused_as_stripe_does(localstripe, params, param):
    response = Runner(localstripe).get("refunds", **params)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_an_unknown_starting_after_is_refused_not_restarted(localstripe):
    response = Runner(localstripe).get("charges", starting_after="ch_nosuchcharge")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "resource_missing"


def test_disputes_are_an_empty_list_and_a_missing_dispute_is_stripes_404(localstripe):
    runner = Runner(localstripe)

    listed = runner.get("disputes", limit=100, **{"created[gt]": 1})
    missing = runner.get("disputes/dp_nosuchdispute")

    assert listed.status_code == 200
    assert listed.json() == {"object": "list", "url": "/v1/disputes", "data": [], "has_more": False}
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "type": "invalid_request_error",
        "code": "resource_missing",
        "param": "id",
        "message": "No such dispute: 'dp_nosuchdispute'",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
    }
    assert requests.get(f"{localstripe}/v1/disputes", timeout=10).status_code == 401  # a key, as anywhere


def test_a_flush_sets_the_clock_back(localstripe):
    runner = Runner(localstripe)
    runner.clock(-86400)
    backdated = runner.post("payouts", {"amount": "100", "currency": "eur"})
    requests.delete(f"{localstripe}/_config/data", timeout=5).raise_for_status()

    now = runner.post("payouts", {"amount": "100", "currency": "eur"})

    assert now["created"] - backdated["created"] >= 86400
