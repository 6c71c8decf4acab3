"""IVR fixtures: flows for the two-tenant world, and `phone`, which plays Twilio against
Paydesk's test client (signed form POSTs) and parses the TwiML it gets back."""

import itertools
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest
from twilio.request_validator import RequestValidator

from payments.ivr import services
from tenants.services import Actor

BASE = "http://testserver"  # PAYDESK_PUBLIC_BASE_URL in config/settings/test.py
_names = itertools.count(1)


@pytest.fixture
def make_flow(world):
    """make_flow(tenant_world=acme, **fields) → a PaymentFlow saved through the service."""

    def make(tw=None, **fields):
        tw = tw or world.acme
        fields.setdefault("name", f"Flow {next(_names)}")
        fields.setdefault("connector", tw.connectors["Stripe_Dev"])
        return services.payment_flow_create(tenant=tw.tenant, actor=Actor.system("test"), **fields)

    return make


def parse(response) -> ET.Element:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)  # noqa: S314 - TwiML of the app under test
    assert root.tag == "Response"
    return root


def says(root: ET.Element) -> list[str]:
    return [say.text for say in root.iter("Say")]


def spoken(root: ET.Element) -> str:
    return " ".join(says(root))


def verbs(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


@dataclass
class Phone:
    """Twilio's side of one call: every request signed with the tenant's auth token."""

    client: object
    tw: object
    on_commit: object = None  # django_capture_on_commit_callbacks: callbacks are applied as in production
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))

    def post(self, url: str, params: dict | None = None, *, token: str | None = None, signature: str | None = None):
        full = url if url.startswith("http") else BASE + url
        body = {"AccountSid": self.tw.tenant.twilio_account_sid, "CallSid": self.call_sid, **(params or {})}
        if signature is None:
            signature = RequestValidator(token or self.tw.auth_token).compute_signature(full, body)
        with self.on_commit(execute=True):
            return self.client.post(full[len(BASE) :], body, HTTP_X_TWILIO_SIGNATURE=signature)

    def twiml(self, url: str, params: dict | None = None) -> ET.Element:
        return parse(self.post(url, params))

    def press(self, root: ET.Element, digits: str) -> ET.Element:
        """Answer the <Gather> of `root` with `digits`."""
        gather = root.find("Gather")
        assert gather is not None, ET.tostring(root)
        return self.twiml(gather.get("action"), {"Digits": digits})


@pytest.fixture
def phone(client, world, django_capture_on_commit_callbacks):
    """phone(tenant_world=acme) → a Phone on a new call."""

    def make(tw=None) -> Phone:
        return Phone(client, tw or world.acme, django_capture_on_commit_callbacks)

    return make


def voice_url(flow) -> str:
    return f"{BASE}/twilio/ivr/{flow.voice_token}/voice/"


@dataclass
class IvrDesk:
    """Paydesk on live_server; calls played by the Twilio Pay simulator's IVR player,
    charging through localstripe."""

    url: str
    stripe_url: str
    world: object

    def call(self, flow, *, tw=None, gather=(), url=None, auth_token=None, **keys):
        from connectors.services import connector_stripe_secret_key
        from simulators.twilio_pay import Caller, IvrCall

        tw = tw or self.world.acme
        return IvrCall(
            voice_url=url or f"{self.url}/twilio/ivr/{flow.voice_token}/voice/",
            account_sid=tw.tenant.twilio_account_sid,
            auth_token=auth_token or tw.auth_token,
            caller=Caller(gather=list(gather), **keys),
            connectors={
                name: {"stripe_secret_key": connector_stripe_secret_key(connector=c)}
                for name, c in tw.connectors.items()
            },
            stripe_api_base=self.stripe_url,
        ).play()

    def stripe_get(self, path: str) -> dict:
        import requests

        response = requests.get(self.stripe_url + path, auth=("sk_test_x", ""), timeout=5)
        response.raise_for_status()
        return response.json()


@pytest.fixture
def ivr_desk(world, localstripe, live_server, settings) -> IvrDesk:
    settings.PAYDESK_PUBLIC_BASE_URL = live_server.url
    settings.STRIPE_API_BASE_URL = localstripe
    return IvrDesk(url=live_server.url, stripe_url=localstripe, world=world)


def query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def enter_amount(phone, flow, *entries):
    root = phone.twiml(voice_url(flow))
    for digits in entries:
        root = phone.press(root, digits)
    return root


def pay_of(root):
    pay = root.find("Pay")
    assert pay is not None, verbs(root)
    return pay
