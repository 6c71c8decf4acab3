"""Play an IVR call the way Twilio and a caller would: fetch the voice webhook's TwiML,
answer each <Gather>, run <Pay> with the keypad entries given, post the signed status
callbacks and the action request, and follow the TwiML returned until the call ends.

    call = IvrCall(voice_url=..., account_sid="AC...", auth_token="...",
                   caller=Caller(gather=["12", "50", "1"], card="4242424242424242"),
                   connectors={"Stripe_Dev": {"stripe_secret_key": "sk_test_..."}},
                   stripe_api_base="http://127.0.0.1:8420")
    result = call.play()      # result.lines: the conversation; result.pay_results: each <Pay>'s outcome

Card checks and masks come from rules.py and the charge or tokenization from gateway.py,
as for the Payments API. Choices made where Twilio's documentation is silent
(docs/twilio-pay.md §3):

* Every request carries the voice parameters (AccountSid, CallSid, From, To, CallStatus,
  Direction, ApiVersion) and X-Twilio-Signature over the exact URL posted to.
* <Pay> asks card number, expiration date, security code, postal code in that order.
  Before each prompt it posts a status callback: For=<field>, Attempt=<n>, ErrorType =
  the previous attempt's error (empty on attempt 1), and the masked values so far; then
  For=payment-processing before the gateway. ErrorType for silence is input-timeout (the
  <Prompt errorType> spelling is timeout; both select the same prompt).
* maxAttempts defaults to 1; after the last failed attempt the action gets
  Result=too-many-failed-attempts. * ends <Pay> with caller-interrupted-with-star; a
  hang-up posts the action with caller-hung-up and ends the call, whatever it answers.
* A chargeAmount Twilio would refuse gives Result=validation-error (PayErrorCode 64003);
  an unknown paymentConnector payment-connector-error (64004), before any prompt.
* The prompt played is the <Prompt> for the field whose attempt, errorType and cardType
  (when given) all match, the one with the most matching attributes first.
* A <Gather> answer longer than numDigits is cut to numDigits; silence ("") posts an
  empty Digits when actionOnEmptyResult is true, else falls through to the next verb.
  When the caller has no answers left they hang up.

Raw card digits live only in this object's memory for one <Pay>; the lines and the
requests recorded show masked values.
"""

from __future__ import annotations

import datetime as dt
import secrets
import xml.etree.ElementTree as ET  # noqa: S405 - parses the TwiML of the app under test
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from . import rules
from .delivery import USER_AGENT, twilio_signature
from .gateway import CardDetails, Outcome, StripeGateway

HANGUP = "hangup"
STAR = "*"
MAX_REQUESTS = 60  # a flow that loops forever ends the simulated call
_TIMEOUT_S = 30.0


@dataclass
class Caller:
    """What the caller keys. `gather`: one answer per <Gather>, in order ("" stays
    silent, "hangup" hangs up). Each card field takes its entries in order (the last one
    repeats, e.g. for the next card after a decline); "" stays silent, "*" ends <Pay>,
    "hangup" hangs up."""

    gather: list[str] = field(default_factory=list)
    card: list[str] | str = "4242424242424242"
    expiry: list[str] | str = ""
    cvc: list[str] | str = ""
    postal: list[str] | str = "94105"

    def __post_init__(self) -> None:
        self._gather = list(self.gather)
        expiry = self.expiry or f"12{(dt.date.today().year + 3) % 100:02d}"
        cvc = self.cvc or ("1234" if str(_first(self.card)).startswith(("34", "37")) else "123")
        self._entries = {
            rules.CARD_NUMBER: _listed(self.card),
            rules.EXPIRATION_DATE: _listed(expiry),
            rules.SECURITY_CODE: _listed(cvc),
            rules.POSTAL_CODE: _listed(self.postal),
        }

    def answer(self) -> str:
        return self._gather.pop(0) if self._gather else HANGUP

    def key(self, field_name: str) -> str:
        entries = self._entries[field_name]
        return entries.pop(0) if len(entries) > 1 else entries[0]


def _listed(value: list[str] | str) -> list[str]:
    return list(value) if isinstance(value, list) else [value]


def _first(value: list[str] | str) -> str:
    return value[0] if isinstance(value, list) and value else str(value)


@dataclass
class CallResult:
    call_sid: str
    lines: list[str] = field(default_factory=list)
    says: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    pay_results: list[dict[str, str]] = field(default_factory=list)
    ended: str = ""


class _CallOver(Exception):
    pass


class IvrCall:
    def __init__(
        self,
        *,
        voice_url: str,
        account_sid: str,
        auth_token: str,
        caller: Caller,
        connectors: dict[str, dict[str, str]],
        stripe_api_base: str,
        call_sid: str | None = None,
        from_number: str = "+15005550006",
        to_number: str = "+15005550001",
    ) -> None:
        self.voice_url = voice_url
        self.auth_token = auth_token
        self.caller = caller
        self.connectors = connectors
        self.stripe_api_base = stripe_api_base
        self.result = CallResult(call_sid=call_sid or "CA" + secrets.token_hex(16))
        self.base = {
            "AccountSid": account_sid,
            "CallSid": self.result.call_sid,
            "From": from_number,
            "To": to_number,
            "Caller": from_number,
            "Called": to_number,
            "CallStatus": "in-progress",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        self._http = requests.Session()
        self._pays = 0

    # -- the call ------------------------------------------------------------------

    def play(self) -> CallResult:
        url: str | None = self.voice_url
        params: dict[str, str] = {}
        try:
            while url is not None:
                if len(self.result.requests) >= MAX_REQUESTS:
                    self._end("too many requests (a loop?)")
                document = self._fetch(url, params)
                url, params = self._run(document, url)
            self._end("end of the TwiML document")
        except _CallOver:
            pass
        finally:
            self._http.close()
        return self.result

    def _fetch(self, url: str, params: dict[str, str]) -> ET.Element:
        kind = "action" if "Result" in params else "gather" if "Digits" in params else "webhook"
        status, text = self._post(url, params, kind=kind)
        if status != 200:
            self._end(f"the webhook answered HTTP {status}")
        try:
            root = ET.fromstring(text)  # noqa: S314 - TwiML from the app under test, on loopback
        except ET.ParseError:
            self._end("the webhook answered something that is not TwiML")
        if root.tag != "Response":
            self._end(f"the webhook answered <{root.tag}>, not <Response>")
        return root

    def _run(self, document: ET.Element, url: str) -> tuple[str | None, dict[str, str]]:
        """Play one document; return the next request (None: the call is over)."""
        for verb in document:
            if verb.tag == "Say":
                self._heard(verb.text or "")
            elif verb.tag == "Gather":
                for say in verb.iter("Say"):
                    self._heard(say.text or "")
                answer = self.caller.answer()
                if answer == HANGUP:
                    self._end("the caller hung up")
                digits = answer[: int(verb.get("numDigits"))] if verb.get("numDigits") else answer
                self._line(f"  caller keys: {digits or '(nothing)'}")
                if digits or verb.get("actionOnEmptyResult") == "true":
                    return urljoin(url, verb.get("action") or url), {"Digits": digits}
            elif verb.tag == "Pay":
                return self._pay(verb, url)
            elif verb.tag == "Redirect":
                return urljoin(url, (verb.text or "").strip()), {}
            elif verb.tag == "Hangup":
                self._end("Paydesk hung up")
            elif verb.tag != "Pause":
                self._line(f"  (ignored <{verb.tag}>)")
        return None, {}

    # -- <Pay> -------------------------------------------------------------------------

    def _pay(self, verb: ET.Element, url: str) -> tuple[str | None, dict[str, str]]:
        self._pays += 1
        a = verb.attrib
        action = urljoin(url, a.get("action") or url)
        currency = (a.get("currency") or "usd").upper()
        self._line(
            f"  <Pay> {a.get('chargeAmount') or 'tokenize ' + a.get('tokenType', 'reusable')} {currency} "
            f"via {a.get('paymentConnector', 'Default')}"
        )
        pay = _PayRun(self, verb)
        try:
            amount = rules.parse_charge_amount(a.get("chargeAmount", ""), currency)
        except ValueError as exc:
            return self._action(
                action, pay, Outcome("validation-error", pay_error_code="64003", payment_error=str(exc))
            )
        connector = self.connectors.get(a.get("paymentConnector") or "Default")
        if connector is None:
            outcome = Outcome("payment-connector-error", pay_error_code="64004", payment_error="Unknown connector")
            return self._action(action, pay, outcome)
        ended = pay.capture()
        if ended is not None:
            return self._action(action, pay, Outcome(ended))
        pay.status_callback("payment-processing", 1, "")
        pay.say_prompt("payment-processing", 1, "")
        gateway = StripeGateway(
            connector.get("stripe_api_base") or self.stripe_api_base,
            connector["stripe_secret_key"],
            f"{self.result.call_sid}:{self._pays}",
        )
        card, pay.raw = pay.card(), {}  # the digits leave memory with this call
        description = a.get("description", "")
        if amount is not None:
            minor = rules.to_minor_units(amount, currency)
            outcome = gateway.charge(card, amount_minor=minor, currency=currency, description=description)
        else:
            outcome = gateway.tokenize(card, token_type=a.get("tokenType") or rules.REUSABLE, description=description)
        return self._action(action, pay, outcome)

    def _action(self, url: str, pay: _PayRun, outcome: Outcome) -> tuple[str | None, dict[str, str]]:
        params = {**outcome.as_params(), **pay.masked_params(), "PaymentMethod": "credit-card"}
        self.result.pay_results.append({k: v for k, v in params.items() if v})
        self._line(
            f"  <Pay> result: {outcome.result} {outcome.confirmation_code or outcome.token} {outcome.payment_error}"
        )
        if outcome.result == "caller-hung-up":
            self._post(url, params, kind="action")
            self._end("the caller hung up")
        return url, params

    # -- HTTP and the transcript -------------------------------------------------------

    def _post(self, url: str, extra: dict[str, str], *, kind: str) -> tuple[int | None, str]:
        params = {**self.base, **extra}
        headers = {"X-Twilio-Signature": twilio_signature(self.auth_token, url, params), "User-Agent": USER_AGENT}
        try:
            response = self._http.post(url, data=params, headers=headers, timeout=_TIMEOUT_S)
            status, text = response.status_code, response.text
        except requests.RequestException as exc:
            status, text = None, type(exc).__name__
        shown = {k: v for k, v in extra.items() if v}
        self.result.requests.append({"kind": kind, "url": url, "params": shown, "status": status})
        details = " ".join(f"{k}={v}" for k, v in shown.items())
        self._line(f"→ {kind} {urlsplit(url).path} {details} [{status}]".rstrip())
        return status, text

    def _heard(self, text: str) -> None:
        self.result.says.append(text)
        self._line(f"  Paydesk says: {text}")

    def _line(self, text: str) -> None:
        self.result.lines.append(text)

    def _end(self, why: str) -> None:
        self.result.ended = why
        self._line(f"(call over: {why})")
        raise _CallOver


class _PayRun:
    """One <Pay> verb: its fields, prompts, the caller's entries and status callbacks."""

    def __init__(self, call: IvrCall, verb: ET.Element) -> None:
        a = verb.attrib
        self.call = call
        self.status_url = a.get("statusCallback")
        self.max_attempts = int(a.get("maxAttempts") or 1)
        self.valid_types = tuple((a.get("validCardTypes") or " ".join(rules.DEFAULT_CARD_TYPES)).split())
        min_postal = a.get("minPostalCodeLength")
        self.min_postal = int(min_postal) if min_postal else None
        self.fields = [rules.CARD_NUMBER, rules.EXPIRATION_DATE]
        if a.get("securityCode", "true") != "false":
            self.fields.append(rules.SECURITY_CODE)
        if a.get("postalCode", "true") != "false":
            self.fields.append(rules.POSTAL_CODE)
        self.prompts = [p for p in verb if p.tag == "Prompt"]
        self.raw: dict[str, str] = {}
        self.masked: dict[str, str] = {}
        self.card_type: str | None = None

    def capture(self) -> str | None:
        """Ask every field; None when all are in, else the Result that ended <Pay>."""
        for name in self.fields:
            attempt, error = 1, ""
            while True:
                self.status_callback(name, attempt, error)
                self.say_prompt(name, attempt, error)
                entry = self.call.caller.key(name)
                if entry == HANGUP:
                    return "caller-hung-up"
                if entry == STAR:
                    self.call._line("  caller presses *")
                    return "caller-interrupted-with-star"
                error = self._check(name, entry) if entry else rules.INPUT_TIMEOUT
                shown = rules.mask(name, entry) if entry and not error else ("(nothing)" if not entry else "(invalid)")
                self.call._line(f"  caller keys {name}: {shown}")
                if not error:
                    self.raw[name] = entry
                    self.masked[name] = rules.mask(name, entry)
                    break
                attempt += 1
                if attempt > self.max_attempts:
                    return "too-many-failed-attempts"
        return None

    def _check(self, name: str, digits: str) -> str | None:
        if name == rules.CARD_NUMBER:
            self.card_type, error = rules.check_card_number(digits, self.valid_types)
            return error
        if name == rules.EXPIRATION_DATE:
            return rules.check_expiration(digits, dt.date.today())
        if name == rules.SECURITY_CODE:
            return rules.check_security_code(digits, self.card_type)
        return rules.check_postal_code(digits, self.min_postal)

    def status_callback(self, name: str, attempt: int, error: str) -> None:
        if self.status_url:
            params = {"For": name, "Attempt": str(attempt), "ErrorType": error, **self.masked_params()}
            self.call._post(self.status_url, params, kind="status-callback")

    def say_prompt(self, name: str, attempt: int, error: str) -> None:
        wanted_error = "timeout" if error == rules.INPUT_TIMEOUT else error
        best: tuple[int, ET.Element] | None = None
        for prompt in self.prompts:
            score = 0
            for attr, value in (("attempt", str(attempt)), ("errorType", wanted_error), ("cardType", self.card_type)):
                listed = prompt.get(attr)
                if listed is None:
                    continue
                if value is None or value == "" or value not in listed.split():
                    score = -1
                    break
                score += 1
            if prompt.get("for") == name and score >= 0 and (best is None or score > best[0]):
                best = (score, prompt)
        if best is not None:
            for say in best[1].iter("Say"):
                self.call._heard(say.text or "")

    def masked_params(self) -> dict[str, str]:
        params = dict.fromkeys(rules.MASKED_PARAM_NAMES, "")
        for name, value in self.masked.items():
            params[rules.VALUE_PARAMS[name]] = value
        if self.card_type and rules.CARD_NUMBER in self.masked:
            params["PaymentCardType"] = self.card_type
        return params

    def card(self) -> CardDetails:
        expiry = self.raw[rules.EXPIRATION_DATE]
        return CardDetails(
            number=self.raw[rules.CARD_NUMBER],
            exp_month=int(expiry[:2]),
            exp_year=2000 + int(expiry[2:]),
            cvc=self.raw.get(rules.SECURITY_CODE),
            postal_code=self.raw.get(rules.POSTAL_CODE),
        )


def play_ivr_call(**kwargs: Any) -> CallResult:
    """IvrCall(**kwargs).play()."""
    return IvrCall(**kwargs).play()
