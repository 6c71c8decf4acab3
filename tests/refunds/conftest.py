"""Refund test helpers: paid sessions whose payment is in localstripe (made as the Twilio
Pay simulator's connector makes it), and a loopback proxy in front of localstripe that
records what Paydesk sends and can drop a request, to play Stripe going away mid-request."""

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from payments.refunds.models import Refund
from payments.sessions.models import PaySession
from tests.reconciliation.conftest import LocalStripe, paid_session, set_code, stripe_objects  # noqa: F401

REFUNDS = "/api/v1/pay-sessions/{}/refunds/"


@pytest.fixture
def dev(world):
    return world.acme.connectors["Stripe_Dev"]


def paid(connector, stripe: LocalStripe, *, amount=2000, currency="usd", **fields) -> tuple[PaySession, dict]:
    """A succeeded session whose PaymentIntent (and charge) localstripe holds."""
    session = paid_session(connector, amount_minor=amount, currency=currency.upper(), **fields)
    intent = stripe.payment(session, amount=amount, currency=currency)
    set_code(session, intent["id"])
    return session, intent


def stripe_refunds(stripe: LocalStripe, intent: dict) -> list[dict]:
    """Every refund localstripe holds for the payment: what Stripe really did."""
    return stripe.get("refunds", payment_intent=intent["id"], limit=100)["data"]


def refund_via_api(api, session, *, key=None, **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(REFUNDS.format(session.uuid), body, format="json", **headers)


def error(response) -> dict:
    return response.json()["error"]


@pytest.fixture
def acme_api(world, api_for):
    return api_for(world.acme.raw_key)


# --- A proxy in front of localstripe ---------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: str


@dataclass
class StripeProxy:
    """Forwards everything to localstripe, records it, and drops what `drop` says: a list
    of (method, path prefix, forward_first). A dropped request gets no answer: the
    connection is closed, as when Stripe goes away. With forward_first, localstripe has
    done the work before the connection drops: the request was made, its answer lost."""

    url: str
    upstream: str
    seen: list[Seen] = field(default_factory=list)
    drop: list[tuple[str, str, bool]] = field(default_factory=list)

    def posts(self, prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path.startswith(prefix)]


@pytest.fixture
def stripe_proxy(stripe_objects, settings) -> Iterator[StripeProxy]:  # noqa: F811 - the fixture above
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                proxy.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body.decode()))
                rule = next(
                    (r for r in proxy.drop if r[0] == self.command and self.path.startswith(r[1])),
                    None,
                )
                if rule is not None:
                    proxy.drop.remove(rule)
            if rule is not None and not rule[2]:
                self.close_connection = True
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            upstream = requests.request(
                self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=10
            )
            if rule is not None:
                self.close_connection = True
                return
            self.send_response(upstream.status_code)
            self.send_header("Content-Type", upstream.headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(upstream.content)))
            self.end_headers()
            self.wfile.write(upstream.content)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, format, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy = StripeProxy(url=f"http://127.0.0.1:{server.server_address[1]}", upstream=stripe_objects.url)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    settings.STRIPE_API_BASE_URL = proxy.url
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()


def form_of(seen: Seen) -> dict:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(seen.body))


def refund_rows(session) -> list[Refund]:
    return list(Refund.objects.filter(session=session).order_by("created_at", "pk"))
