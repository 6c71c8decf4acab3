"""The edge to Stripe. The only module that imports `stripe`.

One `StripeClient` per connector instance, built per call with that connector's key and
the base URL from settings (real Stripe, localstripe in tests and the first run).
"""

import time

import stripe
from django.conf import settings

from connectors.base import ConnectorError

# Stripe's HTTP timeout (seconds): fail fast, let Celery retry.
TIMEOUT_SECONDS = 20


def client_for_key(secret_key: str, *, max_network_retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": settings.STRIPE_API_BASE_URL},
        max_network_retries=max_network_retries,
        http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
    )


def as_connector_error(exc: stripe.StripeError) -> ConnectorError:
    """Map a Stripe SDK error to a ConnectorError, permanent or transient."""
    status = getattr(exc, "http_status", None)
    message = getattr(exc, "user_message", None) or str(exc) or exc.__class__.__name__
    code = getattr(exc, "code", None)
    if isinstance(exc, stripe.AuthenticationError):
        return ConnectorError(f"Stripe rejected the key: {message}", permanent=True, code=code, status=status)
    if isinstance(exc, stripe.PermissionError):
        return ConnectorError(f"The key lacks a permission: {message}", permanent=True, code=code, status=status)
    if isinstance(exc, stripe.RateLimitError):
        return ConnectorError(f"Stripe rate limit: {message}", permanent=False, code=code, status=status)
    if isinstance(exc, stripe.APIConnectionError):
        return ConnectorError(f"Stripe unreachable: {message}", permanent=False, code=code, status=status)
    if status is not None and status >= 500:
        return ConnectorError(f"Stripe error {status}: {message}", permanent=False, code=code, status=status)
    return ConnectorError(f"Stripe refused the request: {message}", permanent=True, code=code, status=status)


def verify_secret_key(secret_key: str) -> None:
    """Prove the key works by reading the account balance (cheap, read-only, allowed to
    restricted keys with balance read). Raises ConnectorError."""
    try:
        client_for_key(secret_key).v1.balance.retrieve()
    except stripe.StripeError as exc:
        raise as_connector_error(exc) from exc


# --- Reconciliation: lists, retrieves, webhooks ----------------------------------------
#
# Everything below returns plain dicts (`to_dict()`), so callers never touch SDK types.
#
# Stripe's lists (https://docs.stripe.com/api/pagination): at most 100 objects a page,
# newest first; `starting_after=<id>` continues after that object, `has_more` says
# whether anything is left. Every list read here accepts a `created` range filter
# (`created[gt]`, see each list endpoint's `created` parameter), so a lower bound is
# always left to Stripe.

LIST_PAGE_SIZE = 100  # Stripe's maximum
LIST_KINDS = frozenset(
    {"charges", "payment_intents", "refunds", "balance_transactions", "payouts", "disputes", "events"}
)


class SignatureInvalid(ConnectorError):
    def __init__(self, message: str):
        super().__init__(message, permanent=True, status=400)


class ListPage:
    """One page of a Stripe list: its objects as dicts, in Stripe's order (newest first)."""

    def __init__(self, items: list[dict], has_more: bool):
        self.items = items
        self.has_more = has_more

    @property
    def last_id(self) -> str | None:
        """What `starting_after` takes to continue after this page."""
        return self.items[-1]["id"] if self.items else None


def id_of(value) -> str:
    """An expandable field as an id. Stripe sends such a field (a charge's
    `balance_transaction`, a PaymentIntent's `latest_charge`) as the object's id, or as
    the object itself when the request expanded it
    (https://docs.stripe.com/api/expanding_objects); this reads either."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(getattr(value, "id", value) or "")


def client_for_connector(secret_key: str) -> stripe.StripeClient:
    """The one client a sync of a connector uses (base URL from settings, no SDK retries:
    the caller backs off and resumes from its cursor)."""
    return client_for_key(secret_key, max_network_retries=0)


def list_page(
    client: stripe.StripeClient,
    kind: str,
    *,
    created_gt: int | None = None,
    starting_after: str | None = None,
    limit: int = LIST_PAGE_SIZE,
    expand: tuple[str, ...] = (),
    filters: dict | None = None,
) -> ListPage:
    """One page of `kind` (a LIST_KINDS name), created after `created_gt` when it is
    given (0 or None: no lower bound). Raises ConnectorError."""
    if kind not in LIST_KINDS:
        raise ValueError(f"unknown Stripe list {kind!r}")
    params: dict = {"limit": limit, **(filters or {})}
    if starting_after:
        params["starting_after"] = starting_after
    if expand:
        params["expand"] = list(expand)
    if created_gt:
        params["created"] = {"gt": int(created_gt)}
    try:
        result = getattr(client.v1, kind).list(params=params)
    except stripe.StripeError as exc:
        raise as_connector_error(exc) from exc
    return ListPage([obj.to_dict() for obj in result.data], bool(result.has_more))


def list_charges(client, **kwargs) -> ListPage:
    return list_page(client, "charges", **kwargs)


def list_payment_intents(client, **kwargs) -> ListPage:
    return list_page(client, "payment_intents", **kwargs)


def list_refunds(client, **kwargs) -> ListPage:
    return list_page(client, "refunds", **kwargs)


def list_balance_transactions(client, *, payout: str | None = None, **kwargs) -> ListPage:
    """With `payout`, the transactions an automatic payout settled: Stripe documents the
    filter for automatic payouts only
    (https://docs.stripe.com/api/balance_transactions/list#balance_transaction_list-payout)."""
    if payout:
        kwargs["filters"] = {**kwargs.get("filters", {}), "payout": payout}
    return list_page(client, "balance_transactions", **kwargs)


def list_payouts(client, **kwargs) -> ListPage:
    return list_page(client, "payouts", **kwargs)


def list_disputes(client, **kwargs) -> ListPage:
    return list_page(client, "disputes", **kwargs)


def list_events(client, **kwargs) -> ListPage:
    return list_page(client, "events", **kwargs)


_RETRIEVE_BY_PREFIX = {
    "pi_": "payment_intents",
    "ch_": "charges",
    "py_": "charges",
    "re_": "refunds",
    "dp_": "disputes",
    "du_": "disputes",
    "po_": "payouts",
    "txn_": "balance_transactions",
    "cus_": "customers",
    "pm_": "payment_methods",
    "tok_": "tokens",
}


def retrieve_object(client: stripe.StripeClient, object_id: str, *, expand: tuple[str, ...] = ()) -> dict | None:
    """One object by its id prefix, or None when Stripe has no such object (404)."""
    service = next((name for prefix, name in _RETRIEVE_BY_PREFIX.items() if object_id.startswith(prefix)), None)
    if service is None:
        return None
    params = {"expand": list(expand)} if expand else None
    try:
        return getattr(client.v1, service).retrieve(object_id, params=params).to_dict()
    except stripe.InvalidRequestError as exc:
        if getattr(exc, "http_status", None) == 404:
            return None
        raise as_connector_error(exc) from exc
    except stripe.StripeError as exc:
        raise as_connector_error(exc) from exc


# Stripe's libraries refuse a signature older than this (seconds); Paydesk refuses one as
# far in the future as well (docs/stripe.md §6).
WEBHOOK_TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE


def verify_webhook(payload: bytes, sig_header: str, secret: str) -> None:
    """Check Stripe-Signature with the connector's signing secret: the HMAC, and a
    timestamp within the tolerance on either side of now. Raises SignatureInvalid.
    The body is parsed by the caller, which decides what a malformed event becomes."""
    if not secret:
        raise SignatureInvalid("This connector has no webhook signing secret.")
    try:
        stripe.WebhookSignature.verify_header(payload, sig_header, secret, WEBHOOK_TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise SignatureInvalid(f"Stripe-Signature did not verify: {exc.__class__.__name__}") from exc
    # verify_header has read "t=" already, so it is an integer.
    signed_at = int(next(item.split("=", 1)[1] for item in sig_header.split(",") if item.split("=", 1)[0] == "t"))
    if signed_at > time.time() + WEBHOOK_TOLERANCE_SECONDS:
        raise SignatureInvalid("Stripe-Signature timestamp is in the future.")


# --- Refunds: the one write Paydesk makes to Stripe -------------------------------------
#
# https://docs.stripe.com/api/refunds/create: a refund names the PaymentIntent or the
# charge it returns money from, and an `amount` in the currency's minor units (the
# integers Paydesk stores). `metadata` links the refund back to Paydesk; Stripe keeps
# it on the object and sends it in every list, retrieve and event (docs/stripe.md §9).

REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent")  # Stripe's `reason` values


def _refund_target(payment: str) -> dict:
    """`payment_intent=pi_…` or `charge=ch_…`/`py_…`: what Stripe's refund endpoints take."""
    if payment.startswith("pi_"):
        return {"payment_intent": payment}
    if payment.startswith(("ch_", "py_")):
        return {"charge": payment}
    raise ValueError(f"not a Stripe payment id: {payment!r}")


def refund_create(
    client: stripe.StripeClient,
    *,
    payment: str,
    amount: int,
    reason: str = "",
    metadata: dict[str, str],
    idempotency_key: str,
) -> dict:
    """Refund `amount` (minor units) of the PaymentIntent or charge `payment`, sent with
    Stripe's `Idempotency-Key` (https://docs.stripe.com/api/idempotent_requests): Stripe
    answers a repeat of the key with the first answer. Raises ConnectorError."""
    params: dict = {**_refund_target(payment), "amount": int(amount), "metadata": metadata}
    if reason:
        params["reason"] = reason
    try:
        return client.v1.refunds.create(params=params, options={"idempotency_key": idempotency_key}).to_dict()
    except stripe.StripeError as exc:
        raise as_connector_error(exc) from exc


def refund_retrieve(client: stripe.StripeClient, refund_id: str) -> dict | None:
    """The refund as Stripe holds it now, or None when Stripe has no such refund."""
    return retrieve_object(client, refund_id)


def refunds_of_payment(client: stripe.StripeClient, payment: str) -> list[dict]:
    """Every refund of a PaymentIntent or charge, all pages (a payment has a handful).
    Raises ConnectorError."""
    found: list[dict] = []
    starting_after = None
    while True:
        page = list_page(client, "refunds", starting_after=starting_after, filters=_refund_target(payment))
        found.extend(page.items)
        if not page.has_more or not page.items:
            return found
        starting_after = page.last_id
