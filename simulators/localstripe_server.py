"""Run localstripe on loopback only, without its pickle persistence.

This is a separate dev/test process: product code never imports localstripe
(it is GPL-3.0-or-later and a test-only peer). Only this entry point, started
as its own process, imports it; Paydesk talks to it over HTTP like to Stripe.

    python -m simulators.localstripe_server --host 127.0.0.1 --port 8420 [--quiet]

Why a wrapper instead of the stock ``localstripe`` CLI
(see ../shared/reference/stripe-and-localstripe.md, "Probe: exact commands"):

* The stock CLI binds ``('::', port)``, i.e. every interface. A Stripe fake
  that accepts any ``sk_`` key must not be reachable from the network.
* By default localstripe pickles the whole store to a fixed path in the
  system temp folder on every write and reloads it at start. That makes it
  3-4x slower, leaks state between runs and lets two instances clobber each
  other's file. State here lives in memory only; ``DELETE /_config/data``
  clears it.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _disable_persistence() -> None:
    from localstripe.resources import Store

    # Store.__setitem__/__delitem__ call dump_to_disk() on every write; the
    # server middleware calls it after every POST/PUT/DELETE. No-ops for both.
    Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]


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

    _disable_persistence()
    # Imported after the patch so nothing can reach the pickle file first.
    from aiohttp import web
    from localstripe import server

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
