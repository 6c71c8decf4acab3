"""The simulated Stripe Pay Connector: what happens after Status=complete.

It talks to Stripe's HTTP API (real Stripe in test mode, or localstripe) with
``requests`` and Stripe's form encoding, so the house rule "only
connectors/stripe.py imports stripe" holds.

What Twilio's Stripe connector really creates is not documented (docs/twilio-pay.md
§4.2 and open question 1). The choices here, all checked against localstripe
1.15.10:

* Charge: PaymentMethod (type=card) -> Customer created with that
  payment_method (Stripe attaches and verifies the card: localstripe declines
  its "attach" test cards such as 4000000000000002 here, as real Stripe does)
  -> PaymentIntent with confirm=true. PaymentConfirmationCode is the
  PaymentIntent id (``pi_...``); ProfileId is the customer (``cus_...``).
* Tokenize one-time: Token (``tok_...``), no customer.
* Tokenize reusable: Token, then a Customer with source=tok_ (``cus_...``).
* Tokenize payment-method: PaymentMethod (``pm_...``) attached to a new
  Customer (``cus_...``).
* Description: localstripe rejects ``description`` on PaymentIntents, so it
  goes to ``metadata[description]`` of every object created that has metadata
  (PaymentMethod, Customer, PaymentIntent), and to the PI's charge
  ``description`` (real Stripe copies a PI's description to its charge).
  Tokens have neither, so a one-time token carries no description.
* Each request carries an ``Idempotency-Key`` derived from the Pay session
  (localstripe ignores it; real Stripe honours it).
* ACH: localstripe has no US bank accounts, so ACH never reaches Stripe; the
  ids are synthetic and deterministic (see ``ach_outcome``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import requests

from .rules import ONE_TIME, PAYMENT_METHOD

logger = logging.getLogger(__name__)

STRIPE_TIMEOUT_S = 10.0

# Pay error codes (§1.4).
GATEWAY_REJECTED_CHARGE = "64008"
GATEWAY_REJECTED_TOKEN = "64010"  # noqa: S105 - an error code, not a secret
CARD_REJECTED = "64012"


@dataclass(frozen=True)
class CardDetails:
    """Raw card data, only ever in memory for the time of the gateway call."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str | None = field(default=None, repr=False)
    postal_code: str | None = None


@dataclass
class Outcome:
    """The result fields of the final callback (§2, Complete/Cancel)."""

    result: str = "success"
    confirmation_code: str = ""
    token: str = ""
    profile_id: str = ""
    pay_error_code: str = ""
    payment_error: str = ""
    connector_error: str = ""

    def as_params(self) -> dict[str, str]:
        return {
            "Result": self.result,
            "PaymentConfirmationCode": self.confirmation_code,
            "PaymentToken": self.token,
            "ProfileId": self.profile_id,
            "PayErrorCode": self.pay_error_code,
            "PaymentError": self.payment_error,
            "ConnectorError": self.connector_error,
        }


def _failure(code: str, message: str, connector_error: str) -> Outcome:
    return Outcome(
        result="payment-connector-error",
        pay_error_code=code,
        payment_error=message,
        connector_error=connector_error,
    )


class _StripeFailure(Exception):
    def __init__(self, kind: str, message: str, code: str = "") -> None:
        super().__init__(message)
        self.kind = kind  # "unreachable" | "card" | "api"
        self.message = message
        self.code = code


class StripeGateway:
    def __init__(self, api_base: str, secret_key: str, idempotency_prefix: str) -> None:
        self._api_base = api_base.rstrip("/")
        self._secret_key = secret_key
        self._idempotency_prefix = idempotency_prefix

    def charge(self, card: CardDetails, *, amount_minor: int, currency: str, description: str) -> Outcome:
        try:
            pm = self._payment_method(card, description)
            customer = self._post("customers", {"payment_method": pm, **_metadata(description)})["id"]
            intent = self._post(
                "payment_intents",
                {
                    "amount": str(amount_minor),
                    "currency": currency.lower(),
                    "customer": customer,
                    "payment_method": pm,
                    "confirm": "true",
                    **_metadata(description),
                },
            )
        except _StripeFailure as exc:
            return _map_failure(exc, GATEWAY_REJECTED_CHARGE)
        if intent.get("status") == "requires_action":
            # A phone caller cannot pass 3-D Secure; Stripe reports such a card
            # as declined with decline_code authentication_required.
            self._best_effort(f"payment_intents/{intent['id']}/cancel", {})
            return _failure(
                CARD_REJECTED,
                "Your card was declined. This transaction requires authentication.",
                "authentication_required",
            )
        if intent.get("status") != "succeeded":
            return _failure(GATEWAY_REJECTED_CHARGE, f"PaymentIntent status {intent.get('status')}", "")
        charge = intent.get("latest_charge")
        charge_id = charge.get("id") if isinstance(charge, dict) else charge
        if description and charge_id:
            self._best_effort(f"charges/{charge_id}", {"description": description})
        return Outcome(confirmation_code=intent["id"], profile_id=customer)

    def tokenize(self, card: CardDetails, *, token_type: str, description: str) -> Outcome:
        try:
            if token_type == PAYMENT_METHOD:
                pm = self._payment_method(card, description)
                customer = self._post("customers", {"payment_method": pm, **_metadata(description)})["id"]
                return Outcome(token=pm, profile_id=customer)
            token = self._post("tokens", _card_fields(card, token_style=True))["id"]
            if token_type == ONE_TIME:
                return Outcome(token=token)
            customer = self._post("customers", {"source": token, **_metadata(description)})["id"]
            return Outcome(token=token, profile_id=customer)
        except _StripeFailure as exc:
            return _map_failure(exc, GATEWAY_REJECTED_TOKEN)

    # -- HTTP -----------------------------------------------------------------

    def _payment_method(self, card: CardDetails, description: str) -> str:
        data = {"type": "card", **_card_fields(card, token_style=False), **_metadata(description)}
        return str(self._post("payment_methods", data)["id"])

    def _post(self, path: str, data: dict[str, str]) -> dict[str, Any]:
        try:
            response = requests.post(
                f"{self._api_base}/v1/{path}",
                data=data,
                auth=(self._secret_key, ""),
                headers={"Idempotency-Key": f"{self._idempotency_prefix}:{path}"},
                timeout=STRIPE_TIMEOUT_S,
            )
        except requests.RequestException as exc:
            raise _StripeFailure("unreachable", f"Could not reach the payment gateway ({type(exc).__name__})") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.ok and isinstance(body, dict) and "id" in body:
            return body
        error = body.get("error", {}) if isinstance(body, dict) else {}
        message = str(error.get("message") or f"HTTP {response.status_code}")
        code = str(error.get("decline_code") or error.get("code") or "")
        logger.info("stripe %s answered %s (%s)", path, response.status_code, code or message)
        raise _StripeFailure("card" if response.status_code == 402 else "api", message, code)

    def _best_effort(self, path: str, data: dict[str, str]) -> None:
        try:
            self._post(path, data)
        except _StripeFailure as exc:
            logger.warning("stripe %s failed: %s", path, exc.message)


def _metadata(description: str) -> dict[str, str]:
    return {"metadata[description]": description} if description else {}


def _card_fields(card: CardDetails, *, token_style: bool) -> dict[str, str]:
    data = {
        "card[number]": card.number,
        "card[exp_month]": str(card.exp_month),
        "card[exp_year]": str(card.exp_year),
    }
    # Without a captured CVC (SecurityCode=false) none is sent, as a real
    # connector would do. localstripe then refuses the card (it insists on a
    # 3-digit CVC) and the session ends in payment-connector-error.
    if card.cvc is not None:
        data["card[cvc]"] = card.cvc
    if card.postal_code:
        if token_style:
            data["card[address_zip]"] = card.postal_code
        else:
            data["billing_details[address][postal_code]"] = card.postal_code
    return data


def _map_failure(exc: _StripeFailure, rejected_code: str) -> Outcome:
    if exc.kind == "card":
        return _failure(CARD_REJECTED, exc.message, exc.code or exc.message)
    if exc.kind == "unreachable":
        return _failure(GATEWAY_REJECTED_CHARGE, exc.message, "")
    return _failure(rejected_code, exc.message, exc.code or exc.message)


def ach_outcome(session_sid: str, *, charging: bool, token_type: str) -> Outcome:
    """Synthetic ACH result: localstripe cannot debit US bank accounts.

    Ids are derived from the session sid, so a test can predict them, and they
    exist nowhere in Stripe: ``py_...`` for a charge (Stripe's prefix for ACH
    payments), ``btok_...`` for a bank-account token, ``pm_...`` for a
    payment-method token, ``cus_...`` as ProfileId for reusable/payment-method.
    """

    def synthetic(prefix: str) -> str:
        return prefix + hashlib.sha256(f"{session_sid}:{prefix}".encode()).hexdigest()[:24]

    if charging:
        return Outcome(confirmation_code=synthetic("py_"))
    if token_type == ONE_TIME:
        return Outcome(token=synthetic("btok_"))
    if token_type == PAYMENT_METHOD:
        return Outcome(token=synthetic("pm_"), profile_id=synthetic("cus_"))
    return Outcome(token=synthetic("btok_"), profile_id=synthetic("cus_"))
