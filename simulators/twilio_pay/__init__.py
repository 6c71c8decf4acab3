"""Twilio Pay simulator: the Payments REST API, signed StatusCallbacks, a caller's keypad.

A dev/test peer, never imported by product code. Paydesk points the official
``twilio`` SDK at it (``client.api.base_url = sim.url``, docs/twilio-pay.md §8
Option A; keep TWILIO_REGION/TWILIO_EDGE unset) and, for the agent-assisted
Pay flow, cannot tell it from Twilio. Section numbers below refer to
docs/twilio-pay.md.

Running it
    ``start(host, port=0, stripe_api_base) -> Simulator`` (daemon threads;
    ``sim.url``, ``sim.flush()``, ``sim.stop()``), or
    ``python -m simulators.twilio_pay serve --port 8425 --stripe-api-base URL``.
    ``python -m simulators.twilio_pay keypad --url URL --call CA...
    (--digits N | --timeout | --star | --hangup)`` plays the caller.
    ``python -m simulators.twilio_pay ivr --url VOICE_URL --account-sid AC...
    --auth-token ... --connector Stripe_Dev=sk_test_... --gather 12 50 1`` plays a whole
    IVR call against a TwiML <Pay> flow (ivr.py: IvrCall, Caller).

Twilio routes (Basic auth with a registered AccountSid and auth token)
    POST /2010-04-01/Accounts/{AC}/Calls/{CA}/Payments.json         -> 201
    POST /2010-04-01/Accounts/{AC}/Calls/{CA}/Payments/{PK}.json    -> 202

Control routes (no auth; loopback tool)
    POST /_sim/accounts              {"account_sid", "auth_token", "connectors": {name:
                                     {"stripe_secret_key", optional "stripe_api_base"}}}
    POST /_sim/calls/{CA}/keypad     {"digits": "4242...#"} | {"digits": "*"} |
                                     {"timeout": true} | {"hangup": true}
    POST /_sim/faults                {"duplicate_callbacks": bool, "bad_signature": bool,
                                     "fail_next_rest": {"status": 500} | null}
    GET  /_sim/flush[?timeout=10]    wait for the callback queue; callbacks since last flush
    GET  /_sim/requests              every REST request (Authorization removed)
    GET  /_sim/callbacks             every callback delivered
    POST /_sim/reset                 forget calls, sessions, keys, logs, faults (keep accounts)

Choices made where Twilio's documentation is silent (open questions in §"Open questions"):

* Callbacks: the common fields on every callback; ChargeAmount only when
  charging, TokenType only when tokenizing, BankAccountType only for ACH
  (left out otherwise, as in the observed create callback). Capture/update and
  final callbacks always carry all seven value fields (PaymentCardNumber,
  PaymentCardType, ExpirationDate, SecurityCode, PaymentCardPostalCode,
  BankRoutingNumber, BankAccountNumber), empty when not captured or not
  applicable. Dates: ISO-8601 with milliseconds and Z (observed), and
  DateUpdated strictly increases by at least 1 ms per session so callbacks can
  be ordered.
* Required: comma-separated PascalCase names without spaces, canonical order
  (PaymentCardNumber, ExpirationDate, SecurityCode, PostalCode,
  BankRoutingNumber, BankAccountNumber); "" when nothing is left (open q. 6).
* PaymentCardNumber mask: "x" per hidden digit plus the last 4
  (xxxxxxxxxxxx4242); BankAccountNumber: "*" per hidden digit plus the last 2.
* ErrorType for a timeout is ``input-timeout`` (the <Pay> spelling, open q. 7).
* One Capture request = one entry. The keypad call carries the whole entry:
  a PartialResult=true callback (no value shown), then PartialResult=false
  with the masked value or an ErrorType. After either, nothing is being
  captured until the agent sends Capture again. A (re-)capture clears the
  field's previous value. A CVC captured before the card number accepts 3 or 4
  digits and is dropped (required again) if it does not fit the card type.
* RequireMatchingInputs: the field stays in Required until its ``-matcher``
  entry equals the first entry; a mismatch gives ErrorType
  input-matching-failed and clears the field. A matcher before a first entry is
  64021; a matcher for a field not listed is 64020.
* Confirmation and Timeout are validated but not acted on: the caller is
  taken to confirm, and a timeout happens only when the keypad says so.
* Status=cancel (open q. 8, "any cancelled-specific Result?"): the callback
  carries the common fields, DateUpdated and Capture="" and no Result.
  Star and hang-up end an open session with Result caller-interrupted-with-star /
  caller-hung-up and every other result field empty. After *, the call goes
  on and a new session may start; after a hang-up every request on the call
  is 21220.
* Status=complete answers 202 at once; the connector call and the final
  callback happen on the delivery thread. Meanwhile the session refuses
  updates and new sessions (64021).
* Stripe connector objects, PaymentConfirmationCode = PaymentIntent id
  (``pi_``), where the Description goes, declines and error codes: see
  gateway.py. ACH never reaches Stripe (synthetic ``py_``/``btok_`` ids).
* Errors: parameter problems 64020 (including missing IdempotencyKey or
  StatusCallback, a relative StatusCallback, bad enums, Timeout > 600, a
  non-flat Parameter), ChargeAmount 64003, unknown connector 64004; an
  idempotency key reused with another request is HTTP 409 / 64020. Only
  successful answers are remembered under their key. Bad credentials 401 /
  20003; another account's path, a malformed SID or an unknown PK 404 / 20404.
  ChargeAmount is echoed in callbacks with the currency's decimals ("12.5" ->
  "12.50").
* Callbacks are posted once (no retries, open q. 12), with
  ``I-Twilio-Idempotency-Token`` (the same on a duplicated delivery) and
  ``User-Agent: TwilioProxy/1.1``, to the StatusCallback of the latest REST
  request on the session.

Card digits stay in this process's memory from the keypad entry until the
session ends; they appear in no callback, log line or /_sim answer.
"""

from .client import SimulatorClient, SimulatorError
from .delivery import twilio_signature
from .ivr import Caller, CallResult, IvrCall, play_ivr_call
from .server import Simulator, start

__all__ = [
    "CallResult",
    "Caller",
    "IvrCall",
    "Simulator",
    "SimulatorClient",
    "SimulatorError",
    "play_ivr_call",
    "start",
    "twilio_signature",
]
