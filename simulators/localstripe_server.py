"""Run localstripe on loopback only, in memory, with the list behaviour Stripe documents.

This is a separate dev/test process: product code never imports localstripe
(it is GPL-3.0-or-later and a test-only peer). Only this entry point, started
as its own process, imports it; Paydesk talks to it over HTTP like to Stripe.

    python -m simulators.localstripe_server --host 127.0.0.1 --port 8420 [--quiet]

How the tests and the first run use it, and what it still lacks: docs/testing.md.

Why a wrapper instead of the stock ``localstripe`` CLI:

* The stock CLI binds ``('::', port)``, i.e. every interface. A Stripe fake
  that accepts any ``sk_`` key must not be reachable from the network.
* By default localstripe pickles the whole store to a fixed path in the
  system temp folder on every write and reloads it at start. That makes it
  3-4x slower, leaks state between runs and lets two instances clobber each
  other's file. State here lives in memory only; ``DELETE /_config/data``
  clears it.
* localstripe's lists fall short of Stripe's in ways Paydesk must not have to
  know about. Stripe lists every object newest first, accepts ``created`` (an
  exact timestamp, or ``created[gt|gte|lt|lte]``) on each list Paydesk reads, and
  has a disputes list (https://docs.stripe.com/api/pagination and each list
  endpoint's ``created`` parameter). localstripe lists charges, PaymentIntents,
  payouts and events oldest first (refunds and balance transactions newest
  first), takes only ``created[gt]`` on charges and any ``created`` on events,
  answers 400 or 500 to it on the other lists, and has no disputes at all.
  ``_stripe_lists`` and ``_add_routes`` make up for that (see there).
* localstripe's refunds refuse Stripe's ``reason``, ignore what was refunded before,
  and refund more than a charge has left; ``_stripe_refunds`` makes them Stripe's.
* A test clock, so tests get objects created in different seconds without
  sleeping: ``POST /_config/clock`` with ``offset=<seconds>`` dates every object
  created from then on that many seconds away from the real time (negative: in
  the past). ``DELETE /_config/data`` sets it back to 0. localstripe's webhook
  signatures carry the event's ``created``, so leave the offset at 0 for a test
  that receives webhooks (Stripe's signature tolerance is 300 s).
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import logging
import operator
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

# localstripe's classes behind the lists Paydesk reads: GET /v1/charges,
# /v1/payment_intents, /v1/refunds, /v1/balance_transactions (and its other
# address /v1/balance/history), /v1/payouts, /v1/events.
STRIPE_LISTS = ("Charge", "PaymentIntent", "Refund", "BalanceTransaction", "Payout", "Event")
CREATED_BOUNDS: dict[str, Callable[[int, int], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


class Clock:
    """Stands in for the ``time`` module inside localstripe.resources (it only calls
    ``time.time()``): the real time plus ``offset`` seconds."""

    def __init__(self) -> None:
        self.offset = 0

    def time(self) -> float:
        return time.time() + self.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


CLOCK = Clock()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _in_memory_store() -> None:
    from localstripe import resources

    # Store.__setitem__/__delitem__ call dump_to_disk() on every write; the
    # server middleware calls it after every POST/PUT/DELETE. No-ops for both.
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]

    # DELETE /_config/data (store.clear()) starts afresh: no objects, the real time.
    def clear(self: dict) -> None:
        dict.clear(self)
        CLOCK.offset = 0

    resources.Store.clear = clear  # type: ignore[method-assign]
    resources.time = CLOCK  # every `created` localstripe sets is int(time.time())


def created_tests(created: Any) -> list[Callable[[int], bool]]:
    """Stripe's ``created`` list filter as predicates on an object's ``created``:
    ``created=<ts>`` (that second) or any of ``created[gt|gte|lt|lte]=<ts>``."""
    from localstripe.errors import UserError

    bounds = created if isinstance(created, dict) else {"eq": created}
    tests = []
    for name, value in bounds.items():
        compare = operator.eq if name == "eq" else CREATED_BOUNDS.get(name)
        try:
            if compare is None:
                raise ValueError(name)
            bound = int(value)
        except (TypeError, ValueError):
            param = "created" if name == "eq" else f"created[{name}]"
            raise UserError(400, f"Invalid {param}: {value!r}", {"param": param}) from None
        tests.append(lambda created_at, compare=compare, bound=bound: compare(created_at, bound))
    return tests


def _stripe_lists() -> None:
    """Wrap the ``_api_list_all`` of each class in STRIPE_LISTS so that its list is
    newest first, honours ``created``, and pages from ``starting_after`` in that order.

    localstripe's own method still applies its other filters (a refund list's
    ``charge``, a charge list's ``customer``, ``limit``); it is called without
    ``created`` and ``starting_after``, so it returns the whole list. The wrapper
    then orders it, cuts it after ``starting_after`` and keeps what ``created``
    allows; localstripe's List applies ``limit`` and computes ``has_more`` on
    what is left when it is exported. Must run before ``localstripe.server`` is
    imported: that module registers /v1/balance/history with the method as it
    is at import time.
    """
    from localstripe import resources
    from localstripe.errors import UserError

    def stripe_list(original: Callable[..., Any]) -> classmethod:
        def list_all(cls, url=None, *, created=None, starting_after=None, **params):
            tests = created_tests(created) if created is not None else []
            listed = original(url, **params)
            # localstripe lists either in creation order or sorted newest first with
            # a stable sort (ties in creation order); reversed, then sorted newest
            # first, both give newest first with the later created first in a tie.
            items = sorted(reversed(listed._list), key=lambda obj: obj.created, reverse=True)
            if starting_after is not None:
                ids = [obj.id for obj in items]
                if starting_after not in ids:
                    message = f"No such object: '{starting_after}'"
                    raise UserError(400, message, {"param": "starting_after", "code": "resource_missing"})
                items = items[ids.index(starting_after) + 1 :]
            listed._list = [obj for obj in items if all(test(obj.created) for test in tests)]
            return listed

        return classmethod(list_all)

    for name in STRIPE_LISTS:
        cls = getattr(resources, name)
        cls._api_list_all = stripe_list(cls._api_list_all)
    history = functools.partial(resources.BalanceTransaction._api_list_all, "/v1/balance/history")
    resources.extra_apis[:] = [
        (method, url, history if (method, url) == ("GET", "/v1/balance/history") else func)
        for method, url, func in resources.extra_apis
    ]


REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _stripe_refunds() -> None:
    """Refunds as Stripe makes them (https://docs.stripe.com/api/refunds/create), where
    localstripe falls short: it refuses Stripe's ``reason`` parameter, refunds the whole
    charge again when no ``amount`` is given, and refunds more than the charge has left.
    Stripe takes ``reason`` (one of three values) and keeps it on the refund, refunds
    what remains when no amount is given, and refuses a fully refunded charge
    (``charge_already_refunded``) or an amount above what remains."""
    from localstripe import resources
    from localstripe.errors import UserError

    original = resources.Refund.__init__

    def init(self, charge=None, payment_intent=None, amount=None, metadata=None, reason=None, **kwargs):
        if reason is not None and reason not in REFUND_REASONS:
            message = f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}"
            raise UserError(400, message, {"param": "reason"})
        charge_obj = None
        try:
            if isinstance(payment_intent, str) and payment_intent.startswith("pi_") and charge is None:
                charge_obj = resources.PaymentIntent._api_retrieve(payment_intent).latest_charge
            elif isinstance(charge, str) and charge.startswith("ch_"):
                charge_obj = resources.Charge._api_retrieve(charge)
        except UserError:
            charge_obj = None  # the original raises Stripe's error for an unknown id
        if charge_obj is not None and charge_obj.status == "succeeded":
            remaining = charge_obj.amount - charge_obj.amount_refunded
            wanted = resources.try_convert_to_int(amount) if amount is not None else remaining
            if remaining <= 0:
                message = f"Charge {charge_obj.id} has already been refunded."
                raise UserError(400, message, {"code": "charge_already_refunded"})
            if isinstance(wanted, int) and wanted > remaining:
                message = f"Refund amount ({wanted}) is greater than unrefunded amount on charge ({remaining})"
                raise UserError(400, message, {"param": "amount"})
            amount = wanted
        original(self, charge=charge, payment_intent=payment_intent, amount=amount, metadata=metadata, **kwargs)
        self.reason = reason

    resources.Refund.__init__ = init  # type: ignore[method-assign]


def _add_routes(app: Any) -> None:
    """Disputes as a Stripe account without any: an empty list in Stripe's list shape,
    and Stripe's 404 for one dispute (https://docs.stripe.com/api/disputes, tests that
    need disputes serve Stripe-shaped JSON of their own). And the test clock."""
    from aiohttp import web
    from localstripe.errors import UserError
    from localstripe.server import unflatten_data

    async def list_disputes(request: web.Request) -> web.Response:
        created = unflatten_data(request.query).get("created")
        if created is not None:
            created_tests(created)  # a malformed filter is refused as on the other lists
        return web.json_response({"object": "list", "url": "/v1/disputes", "data": [], "has_more": False})

    async def retrieve_dispute(request: web.Request) -> web.Response:
        dispute_id = request.match_info["id"]
        raise UserError(
            404,
            f"No such dispute: '{dispute_id}'",
            {
                "code": "resource_missing",
                "param": "id",
                "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
            },
        )

    async def set_clock(request: web.Request) -> web.Response:
        data = await request.post()
        try:
            CLOCK.offset = int(data.get("offset", "0"))
        except ValueError:
            raise UserError(400, "offset must be a whole number of seconds") from None
        return web.json_response({"offset": CLOCK.offset, "now": int(CLOCK.time())})

    app.router.add_get("/v1/disputes", list_disputes)
    app.router.add_get("/v1/disputes/{id}", retrieve_dispute)
    app.router.add_post("/_config/clock", set_clock)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.localstripe_server",
        description="localstripe on loopback, in memory only (dev/test peer).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--quiet", action="store_true", help="no access log, no banner")
    args = parser.parse_args(argv)

    if not _is_loopback(args.host):
        parser.error(f"refusing to bind {args.host!r}: localstripe accepts any sk_ key, loopback only")

    _in_memory_store()
    _stripe_lists()
    _stripe_refunds()
    # Imported after the patches so nothing can reach the pickle file first, and the
    # routes it registers use the patched list methods.
    from aiohttp import web
    from localstripe import server

    _add_routes(server.app)

    access_log: logging.Logger | None = None
    if not args.quiet:
        access_log = logging.getLogger("aiohttp.access")
        access_log.setLevel(logging.INFO)
        access_log.addHandler(logging.StreamHandler(sys.stderr))

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    host = "127.0.0.1" if args.host == "localhost" else args.host
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, args.port))

    web.run_app(
        server.app,
        sock=sock,
        access_log=access_log,
        print=None if args.quiet else print,
        # SIGTERM from the test fixture should stop it at once, not after 60 s.
        shutdown_timeout=1.0,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
