"""Reconciliation test helpers: Stripe objects made in localstripe the way the Twilio Pay
simulator makes them (dated with the runner's test clock where a test needs objects of
different times), pay sessions with a result, signed Stripe events, and a recorded-JSON
Stripe (served with `responses`) for what localstripe lacks (fees, disputes, automatic
payouts)."""

import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses
from django.utils import timezone

from connectors.services import connector_stripe_webhook_secret
from payments.reconciliation import services, sync
from payments.sessions.models import PaySession
from tests.factories import PaySessionFactory
from tests.payments.conftest import desk  # noqa: F401 - the end-to-end fixture, shared with tests/payments

FIXTURES = Path(__file__).parent / "fixtures"
FAKE_STRIPE = "https://api.stripe.test"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def paid_session(
    connector, *, code="", amount_minor=1250, currency="USD", result="success", ago=timedelta(hours=1), **fields
) -> PaySession:
    """A session that ended `ago` with Twilio's result (PaySessionFactory, one tenant)."""
    values = {
        "tenant": connector.tenant,
        "connector": connector,
        "status": "succeeded" if result == "success" else "failed",
        "result": result,
        "payment_confirmation_code": code,
        "amount_minor": amount_minor,
        "currency": currency,
        "required_fields": [],
        "completed_at": timezone.now() - ago,
    }
    return PaySessionFactory(**(values | fields))


def set_code(session: PaySession, code: str) -> None:
    PaySession.objects.filter(pk=session.pk).update(payment_confirmation_code=code)
    session.payment_confirmation_code = code


class LocalStripe:
    """Objects in localstripe, made as the simulator's gateway makes them (gateway.py):
    PaymentIntent confirm=true with metadata[description], then the charge's description."""

    def __init__(self, url: str):
        self.url = url

    def post(self, path: str, data: dict) -> dict:
        response = requests.post(f"{self.url}/v1/{path}", data=data, auth=("sk_test_x", ""), timeout=10)
        assert response.ok, response.text
        return response.json()

    def get(self, path: str, **params) -> dict:
        response = requests.get(f"{self.url}/v1/{path}", params=params, auth=("sk_test_x", ""), timeout=10)
        assert response.ok, response.text
        return response.json()

    def payment(self, session: PaySession | None = None, *, amount=1250, currency="usd", reference=None) -> dict:
        description = f"Phone order · Paydesk {reference or session.uuid}"
        intent = self.post(
            "payment_intents",
            {
                "amount": str(amount),
                "currency": currency,
                "payment_method": "pm_card_visa",
                "confirm": "true",
                "metadata[description]": description,
            },
        )
        charge = intent["latest_charge"]
        charge_id = charge["id"] if isinstance(charge, dict) else charge
        self.post(f"charges/{charge_id}", {"description": description})
        intent["charge_id"] = charge_id
        return intent

    def charge(self, *, amount=1250, currency="usd", description="") -> dict:
        return self.post(
            "charges",
            {
                "amount": str(amount),
                "currency": currency,
                "source": "pm_card_visa",
                **({"description": description} if description else {}),
            },
        )

    def refund(self, charge_id: str, amount: int | None = None) -> dict:
        return self.post("refunds", {"charge": charge_id, **({"amount": str(amount)} if amount else {})})

    def events(self, **params) -> list[dict]:
        return self.get("events", limit=100, **params)["data"]

    def payout(self, *, amount=900, currency="eur") -> dict:
        return self.post("payouts", {"amount": str(amount), "currency": currency})

    def clock(self, offset_seconds: int) -> None:
        """Date the objects made from now on `offset_seconds` away from the real time
        (the runner's test clock; the `localstripe` fixture's flush sets it back to 0)."""
        response = requests.post(f"{self.url}/_config/clock", data={"offset": str(offset_seconds)}, timeout=10)
        assert response.ok, response.text


@pytest.fixture
def stripe_objects(localstripe, settings) -> LocalStripe:
    settings.STRIPE_API_BASE_URL = localstripe
    return LocalStripe(localstripe)


@pytest.fixture(autouse=True)
def _no_grace(settings, monkeypatch):
    """Judge at once (tests decide what is recent), and never really sleep in a backoff."""
    settings.PAYDESK_RECONCILIATION_GRACE_SECONDS = 0
    monkeypatch.setattr(sync, "sleep", lambda seconds: None)


@pytest.fixture
def dev(world):
    return world.acme.connectors["Stripe_Dev"]


def reconcile(connector, **kwargs):
    return services.connector_reconcile(connector=connector, **kwargs)


# --- Signed events ---------------------------------------------------------------------


def signed(payload: bytes, secret: str, *, at: int | None = None) -> str:
    at = at or int(time.time())
    digest = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def make_event(obj: dict, type_: str, *, created: int | None = None, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created or int(time.time()),
        "type": type_,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj},
    }


def post_event(client, connector, event: dict, *, secret: str | None = None):
    payload = json.dumps(event).encode()
    secret = secret if secret is not None else connector_stripe_webhook_secret(connector=connector)
    return client.post(
        f"/stripe/webhooks/{connector.uuid}/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signed(payload, secret),
    )


# --- A recorded-JSON Stripe ---------------------------------------------------------------


class FakeStripe:
    """Stripe's list endpoints over fixed objects (the recorded fixtures): newest first
    (or oldest first, to prove the order does not matter), limit, starting_after,
    created[gt], payout=. `faults` is a queue of (path, status) served before the data."""

    LISTS = ("charges", "payment_intents", "refunds", "disputes", "payouts", "balance_transactions", "events")

    def __init__(self, rsps: responses.RequestsMock):
        self.data = {kind: [] for kind in self.LISTS}
        self.by_payout: dict[str, list] = {}
        self.newest_first = True
        self.faults: list[tuple[str, int]] = []
        self.requests: list[str] = []
        for kind in self.LISTS:
            rsps.add_callback(responses.GET, f"{FAKE_STRIPE}/v1/{kind}", callback=self._serve)

    def _serve(self, request):
        url = urlparse(request.url)
        self.requests.append(request.url)
        kind = url.path.rsplit("/", 1)[-1]
        if self.faults and self.faults[0][0] == kind:
            status = self.faults.pop(0)[1]
            kinds = {429: "rate_limit_error", 401: "invalid_request_error"}
            body = {"error": {"type": kinds.get(status, "api_error"), "message": f"fault {status}"}}
            return status, {"Request-Id": "req_fault"}, json.dumps(body)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        items = self.by_payout.get(query["payout"], []) if "payout" in query else self.data[kind]
        items = sorted(items, key=lambda o: o["created"], reverse=self.newest_first)
        if "created[gt]" in query:
            items = [o for o in items if o["created"] > int(query["created[gt]"])]
        start = 0
        if query.get("starting_after"):
            start = next(i for i, o in enumerate(items) if o["id"] == query["starting_after"]) + 1
        limit = int(query.get("limit", 10))
        page = items[start : start + limit]
        body = {"object": "list", "url": url.path, "data": page, "has_more": start + limit < len(items)}
        return 200, {"Request-Id": "req_fake"}, json.dumps(body)

    def load(self, kind: str, fixture_name: str) -> list[dict]:
        objects = fixture(fixture_name)["data"]
        self.data[kind].extend(objects)
        return objects


@pytest.fixture
def fake_stripe(settings):
    settings.STRIPE_API_BASE_URL = FAKE_STRIPE
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeStripe(rsps)


class StripeTap:
    """Every request the SDK makes to the Stripe base URL, the ids each list page
    answered with, and a switch to make Stripe unreachable (`fail`: a predicate on the
    URL) from inside the test process."""

    def __init__(self, base: str):
        self.base = base
        self.calls: list[tuple[str, str]] = []
        self.pages: list[tuple[str, list[str]]] = []  # (url, ids listed), for list GETs
        self.fail = None

    def lists(self, kind: str) -> list[str]:
        return [url for method, url in self.calls if method.upper() == "GET" and f"/v1/{kind}?" in url]

    def listed(self, kind: str) -> list[str]:
        """The ids every page of `kind` answered with, in order."""
        return [i for url, ids in self.pages if f"/v1/{kind}?" in url for i in ids]

    def clear(self) -> None:
        self.calls.clear()
        self.pages.clear()


@pytest.fixture
def tap(stripe_objects, monkeypatch) -> StripeTap:
    tap = StripeTap(stripe_objects.url)
    original = requests.Session.request

    def request(self, method, url, *args, **kwargs):
        if str(url).startswith(tap.base + "/v1/") and kwargs.get("headers", {}).get("Authorization"):
            tap.calls.append((method, str(url)))
            if tap.fail is not None and tap.fail(str(url)):
                raise requests.ConnectionError("Stripe unreachable (test fault)")
            response = original(self, method, url, *args, **kwargs)
            body = response.json() if response.ok and method.upper() == "GET" else {}
            if body.get("object") == "list":
                tap.pages.append((str(url), [item["id"] for item in body["data"]]))
            return response
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)
    return tap


def make_item(
    connector,
    *,
    reason="amount_mismatch",
    session=None,
    stripe_object_id="pi_3QItem",
    days_old=0,
    resolved=False,
    **fields,
):
    """An exceptions-queue item as a matching run leaves it (for admin and API tests)."""
    from payments.reconciliation.models import ReconciliationItem

    opened = timezone.now() - timedelta(days=days_old)
    session = session or paid_session(connector, code=stripe_object_id)
    return ReconciliationItem.objects.create(
        tenant=connector.tenant,
        connector=connector,
        session=session,
        reason=reason,
        subject=str(session.uuid),
        stripe_object_id=stripe_object_id,
        detail=f"{reason} detail",
        fingerprint="f" * 64,
        opened_at=opened,
        last_seen_at=opened,
        paydesk_data={"amount_minor": 1250, "currency": "USD"},
        stripe_data={"amount": 1200, "currency": "USD"},
        resolved_at=timezone.now() if resolved else None,
        resolution_note="done" if resolved else "",
        **fields,
    )
