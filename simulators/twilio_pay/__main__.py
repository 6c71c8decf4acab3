"""Command line: run the simulator, or press keys as the caller.

    python -m simulators.twilio_pay serve --host 127.0.0.1 --port 8425 \\
        --stripe-api-base http://127.0.0.1:8420
    python -m simulators.twilio_pay keypad --url http://127.0.0.1:8425 \\
        --call CA... (--digits 4242424242424242 | --timeout | --star | --hangup)
    python -m simulators.twilio_pay ivr --url https://paydesk.example/twilio/ivr/<token>/voice/ \\
        --account-sid AC... --auth-token ... --connector Stripe_Dev=sk_test_... --gather 12 50 1
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from types import FrameType

from .client import SimulatorClient, SimulatorError
from .ivr import Caller, IvrCall
from .server import Simulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.twilio_pay")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the simulator in the foreground")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8425)
    serve.add_argument("--stripe-api-base", default="http://127.0.0.1:8420", help="Stripe or localstripe base URL")
    serve.add_argument("--verbose", action="store_true", help="log every request line (never bodies)")

    keypad = commands.add_parser("keypad", help="act as the caller on a call's keypad")
    keypad.add_argument("--url", default="http://127.0.0.1:8425")
    keypad.add_argument("--call", required=True, help="CallSid (CA...)")
    key = keypad.add_mutually_exclusive_group(required=True)
    key.add_argument("--digits", help="digits for the field being captured, optionally ending with #")
    key.add_argument("--timeout", action="store_true", help="the caller stays silent")
    key.add_argument("--star", action="store_true", help="the caller presses * (ends the session)")
    key.add_argument("--hangup", action="store_true", help="the caller hangs up")

    ivr = commands.add_parser("ivr", help="play a whole IVR call against a voice webhook serving <Pay> TwiML")
    ivr.add_argument("--url", required=True, help="the voice webhook URL (as set on the Twilio number)")
    ivr.add_argument("--account-sid", required=True)
    ivr.add_argument("--auth-token", required=True, help="signs every request (X-Twilio-Signature)")
    ivr.add_argument("--connector", action="append", default=[], help="NAME=sk_test_... (repeatable)")
    ivr.add_argument("--stripe-api-base", default="http://127.0.0.1:8420")
    ivr.add_argument("--gather", nargs="*", default=[], help="one answer per <Gather>, e.g. 12 50 1")
    ivr.add_argument("--card", default="4242424242424242")
    ivr.add_argument("--expiry", default="", help="MMYY (default: December, three years on)")
    ivr.add_argument("--cvc", default="")
    ivr.add_argument("--postal", default="94105")

    args = parser.parse_args(argv)
    if args.command == "ivr":
        return _ivr(args)
    if args.command == "serve":
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
        sim = Simulator(args.host, args.port, args.stripe_api_base)
        signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C (background jobs ignore SIGINT)
        print(f"Twilio Pay simulator on {sim.url} (Stripe at {args.stripe_api_base}); Ctrl-C stops it", flush=True)
        try:
            sim.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            sim.stop()
        return 0

    if args.digits is not None:
        payload: dict[str, object] = {"digits": args.digits}
    elif args.timeout:
        payload = {"timeout": True}
    elif args.star:
        payload = {"digits": "*"}
    else:
        payload = {"hangup": True}
    try:
        answer = SimulatorClient(args.url).keypad(args.call, payload)
    except SimulatorError as exc:
        print(json.dumps(exc.body, indent=2))
        return 1
    print(json.dumps(answer, indent=2))
    return 0


def _ivr(args: argparse.Namespace) -> int:
    connectors = {}
    for spec in args.connector:
        name, _, key = spec.partition("=")
        connectors[name] = {"stripe_secret_key": key}
    caller = Caller(gather=args.gather, card=args.card, expiry=args.expiry, cvc=args.cvc, postal=args.postal)
    result = IvrCall(
        voice_url=args.url,
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        caller=caller,
        connectors=connectors,
        stripe_api_base=args.stripe_api_base,
    ).play()
    print("\n".join(result.lines))
    return 0 if result.pay_results and result.pay_results[-1].get("Result") == "success" else 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
