"""Drive a whole agent-assisted payment through Paydesk's public REST API against the
Twilio Pay simulator, playing both the partner app and the caller, and print the
timeline. Development only: it needs `make run` (Paydesk, the simulator, localstripe).

With `--console` it plays only the caller: it starts a session through a one-time console
link (POST /api/v1/console-links/), prints the console's URL, and types the digits of
each field a person requests in the console, until the payment ends (docs/console.md)."""

import json
import secrets
import time
from datetime import date

import requests
from django.conf import settings
from django.core.management.base import CommandError

from connectors.selectors import connector_by_name
from connectors.services import connector_stripe_secret_key
from simulators.twilio_pay import SimulatorClient, SimulatorError
from tenants.management.cli import OperatorCommand
from tenants.models import Scope, Tenant
from tenants.services import Actor, api_key_create, api_key_revoke, tenant_twilio_auth_token

DECLINE_CARD = "4000000000000002"  # Stripe's generic decline test card
POLL_SECONDS = 15  # callbacks are applied by Celery; with a worker they may lag a little


class Command(OperatorCommand):
    help = "Run a simulated agent-assisted payment end to end and print its timeline (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--connector", default="Default", help="Connector unique name.")
        parser.add_argument("--amount", default="12.50", help="Major units, e.g. 12.50; 0 tokenizes.")
        parser.add_argument("--currency", default=None)
        parser.add_argument("--card", default="4242424242424242", help="A Stripe test card number.")
        parser.add_argument("--decline", action="store_true", help=f"Use the decline card {DECLINE_CARD}.")
        parser.add_argument("--base-url", default=None, help="Paydesk's URL (default PAYDESK_PUBLIC_BASE_URL).")
        parser.add_argument("--sim-url", default=None, help="The simulator's URL (default TWILIO_API_BASE_URL).")
        parser.add_argument(
            "--console",
            action="store_true",
            help="Print the agent console's URL for a new session and play only the caller: "
            "a person requests the fields in a browser, this command types them.",
        )
        parser.add_argument(
            "--wait", type=float, default=600.0, help="With --console: seconds to wait for the agent (default 600)."
        )
        parser.add_argument(
            "--mistake",
            action="store_true",
            help="With --console: the caller types an expired expiry date the first time it is asked for.",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["sim_url"]:
            raise CommandError("simulate_payment is for development: run it with DEBUG on or pass --sim-url.")
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        connector = connector_by_name(tenant=tenant, unique_name=options["connector"])
        if connector is None:
            raise CommandError(f"Tenant {tenant.slug} has no connector {options['connector']!r}.")
        base = (options["base_url"] or settings.PAYDESK_PUBLIC_BASE_URL).rstrip("/")
        sim = SimulatorClient(options["sim_url"] or settings.TWILIO_API_BASE_URL)
        card = DECLINE_CARD if options["decline"] else options["card"]
        try:
            sim.register_account(
                tenant.twilio_account_sid,
                tenant_twilio_auth_token(tenant=tenant),
                {
                    c.unique_name: {"stripe_secret_key": connector_stripe_secret_key(connector=c)}
                    for c in tenant.connectors.all()
                },
            )
        except (requests.RequestException, SimulatorError) as exc:
            raise CommandError(
                f"The Twilio Pay simulator does not answer at {sim.url} ({exc}). Is `make run` up?"
            ) from None
        actor = Actor.system("simulate_payment")
        key, raw_key = api_key_create(
            tenant=tenant,
            name="simulate_payment (temporary)",
            scopes=[Scope.PAYMENTS_READ, Scope.PAYMENTS_WRITE],
            actor=actor,
        )
        try:
            if options["console"]:
                return _play_caller(self, base, raw_key, sim, options, card)
            session, events = _run(base, raw_key, sim, options, card)
        finally:
            api_key_revoke(api_key=key, actor=actor)
        if options["json"]:
            self.stdout.write(json.dumps({"session": session, "events": events}, sort_keys=True))
            return
        for event in events:
            self.stdout.write(_timeline_line(event))
        outcome = session["outcome"]
        self.stdout.write(
            f"\nSession {session['id']} {session['status']}: result={outcome['result'] or '-'} "
            f"confirmation={outcome['payment_confirmation_code'] or '-'} token={outcome['payment_token'] or '-'} "
            f"error={outcome['payment_error'] or '-'}"
        )


class _Api:
    def __init__(self, base: str, raw_key: str):
        self.base, self.http = base, requests.Session()
        self.http.headers["Authorization"] = f"Bearer {raw_key}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.http.close()  # no keep-alive connection left open to Paydesk

    def call(self, method: str, path: str, body=None) -> dict:
        try:
            response = self.http.request(method, self.base + path, json=body, timeout=30)
        except requests.RequestException as exc:
            raise CommandError(f"Paydesk does not answer at {self.base} ({exc}). Is `make run` up?") from None
        if response.status_code >= 400:
            raise CommandError(f"{method} {path} → {response.status_code}: {response.text[:500]}")
        return response.json()


def _run(base: str, raw_key: str, sim: SimulatorClient, options: dict, card: str) -> tuple[dict, list]:
    with _Api(base, raw_key) as api:
        return _agent_and_caller(api, sim, options, card)


def _agent_and_caller(api, sim: SimulatorClient, options: dict, card: str) -> tuple[dict, list]:
    call_sid = "CA" + secrets.token_hex(16)
    body = {"call_sid": call_sid, "connector": options["connector"], "charge_amount": options["amount"]}
    if options["currency"]:
        body["currency"] = options["currency"]
    session = api.call("POST", "/api/v1/pay-sessions/", body)
    path = f"/api/v1/pay-sessions/{session['id']}/"
    sim.flush()
    entries = _entries(card)
    for field in list(session["required_fields"]):
        api.call("POST", path + "capture/", {"capture": field})
        sim.flush()
        sim.press(call_sid, entries[field])
        sim.flush()
        _wait(api, path, lambda s, f=field: f not in s["required_fields"] or s["last_error_type"])
    api.call("POST", path + "complete/")
    sim.flush()
    session = _wait(api, path, lambda s: s["status"] not in ("completing", "ready"))
    return session, api.call("GET", path + "events/")


def _entries(card: str) -> dict[str, str]:
    return {
        "payment-card-number": card,
        "expiration-date": f"12{(date.today().year + 3) % 100:02d}",
        "security-code": "1234" if card.startswith(("34", "37")) else "123",
        "postal-code": "94105",
        "bank-routing-number": "121000358",
        "bank-account-number": "508862392",
    }


GOOD_CARD = "4242424242424242"
CALLER_POLL_SECONDS = 0.1  # how often the caller looks for the agent's next request


def _play_caller(command, base: str, raw_key: str, sim: SimulatorClient, options: dict, card: str) -> None:
    """--console: start the session behind a console link, print the link, then answer
    each field the agent requests until the payment on the call has ended."""
    with _Api(base, raw_key) as api:
        _console_session(command, api, base, sim, options, card)


def _console_session(command, api, base: str, sim: SimulatorClient, options: dict, card: str) -> None:
    call_sid = "CA" + secrets.token_hex(16)
    body = {
        "call_sid": call_sid,
        "connector": options["connector"],
        "amount": options["amount"],
        "reference": "simulate_payment",
        "agent_reference": "simulate_payment",
    }
    if options["currency"]:
        body["currency"] = options["currency"]
    link = api.call("POST", "/api/v1/console-links/", body)
    session = link["session"]
    say = command.stdout
    say.write(
        f"Console for session {session['id']} ({session['charge_amount'] or 'save card'} {session['currency']}):\n"
        f"  open once, within minutes, no login: {link['url']}\n"
        f"  or signed in as an owner or admin:   {base}/console/sessions/{session['id']}/\n"
        f"Playing the caller on call {call_sid}: request the fields in the console. Ctrl+C stops.\n"
    )
    say.flush()
    answered = 0
    declined_once = expired_once = False
    deadline = time.monotonic() + options["wait"]
    while time.monotonic() < deadline:
        asked = [
            r["form"]["Capture"]
            for r in sim.requests()
            if f"/Calls/{call_sid}/" in r["path"] and r["form"].get("Capture") and r["status"] == 202
        ]
        for capture in asked[answered:]:
            field = capture.removesuffix("-matcher")
            digits = _entries(card if not declined_once else GOOD_CARD)[field]
            if field == "expiration-date" and options["mistake"] and not expired_once:
                digits, expired_once = "0120", True  # January 2020: long expired
            shown = (
                f"a card ending {digits[-4:]}"
                if field == "payment-card-number"
                else ("the security code" if field == "security-code" else digits)
            )
            say.write(f"  agent asked for the {field.replace('-', ' ')} → caller types {shown}\n")
            say.flush()
            try:
                sim.press(call_sid, digits)
            except SimulatorError as exc:
                say.write(f"  (the keypad was refused: {exc.body})\n")
            answered += 1
        sessions = api.call("GET", f"/api/v1/pay-sessions/?call_sid={call_sid}")["results"]
        latest = sessions[0] if sessions else session
        if latest["status"] == "failed" and latest["outcome"]["pay_error_code"] == "64012":
            declined_once = True  # the caller reaches for another card
        if latest["status"] in ("succeeded", "cancelled", "expired"):
            break
        time.sleep(CALLER_POLL_SECONDS)
    else:
        say.write("Stopped waiting for the agent.\n")
    for row in reversed(api.call("GET", f"/api/v1/pay-sessions/?call_sid={call_sid}")["results"]):
        outcome = row["outcome"]
        say.write(
            f"Session {row['id']} {row['status']}: result={outcome['result'] or '-'} "
            f"confirmation={outcome['payment_confirmation_code'] or '-'} error={outcome['payment_error'] or '-'}\n"
        )


def _wait(api: _Api, path: str, done) -> dict:
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        session = api.call("GET", path)
        if done(session) or time.monotonic() > deadline:
            return session
        time.sleep(0.1)


def _timeline_line(event: dict) -> str:
    p = event["payload"]
    when = event["received_at"][11:23]
    if event["direction"] == "out":
        what = (
            p.get("capture")
            or p.get("status")
            or f"start {p.get('charge_amount') or 'tokenize'} "
            f"{p.get('currency', '')} via {p.get('payment_connector', '')}"
        )
        return f"{when}  → Twilio {event['kind']:<8} {what}  [{event['http_status']}]"
    details = {
        k: p[k]
        for k in (
            "Capture",
            "PartialResult",
            "Required",
            "ErrorType",
            "PaymentCardNumber",
            "ExpirationDate",
            "Result",
            "PaymentConfirmationCode",
            "PaymentToken",
            "PaymentError",
        )
        if k in p
    }
    return f"{when}  ← callback        {' '.join(f'{k}={v}' for k, v in details.items()) or '(session started)'}"
