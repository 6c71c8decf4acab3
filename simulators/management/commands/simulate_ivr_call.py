"""Call a payment flow's number in simulation and print the conversation: the simulator's
IVR player plays Twilio and the caller against Paydesk's voice webhook, and charges
through the connector's Stripe (localstripe in development). Never with a live connector."""

import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.urls import reverse

from connectors.models import ConnectorInstance
from connectors.services import connector_stripe_secret_key
from payments.ivr.models import PaymentFlow
from simulators.twilio_pay import Caller, IvrCall
from tenants.management.cli import OperatorCommand
from tenants.services import tenant_twilio_auth_token


class Command(OperatorCommand):
    help = "Play a simulated IVR call against a payment flow and print the conversation (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--flow", required=True, help="The flow's id (UUID).")
        parser.add_argument(
            "--amount-digits",
            nargs="*",
            default=[],
            help="What the caller keys for the amount: 12 50 (dollars, then cents) or 12*50 (one entry, * as the "
            "decimal point); every caller-keyed flow takes both.",
        )
        parser.add_argument("--reference", default=None, help="For flows paid by reference: the digits keyed.")
        parser.add_argument("--confirm", default="1", help="The answer to the read-back (1 confirms, 2 re-enters).")
        parser.add_argument("--then", nargs="*", default=[], help="Further answers, e.g. 1 to try another card.")
        parser.add_argument("--card", nargs="+", default=["4242424242424242"], help="Card number(s), in order.")
        parser.add_argument("--expiry", default="", help="MMYY (default: December, three years on).")
        parser.add_argument("--cvc", default="")
        parser.add_argument("--postal", default="94105")
        parser.add_argument(
            "--expect",
            choices=["success", "failure", "any"],
            default="success",
            help="How the call must end for the command to succeed: the payment's result is success (default), "
            "a failure (e.g. a decline card), or any result. A call that never reaches the payment always fails.",
        )
        parser.add_argument("--base-url", default=None, help="Paydesk's URL (default PAYDESK_PUBLIC_BASE_URL).")
        parser.add_argument("--stripe-api-base", default=None, help="Stripe's URL (default STRIPE_API_BASE_URL).")

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["stripe_api_base"]:
            raise CommandError("simulate_ivr_call is for development: run it with DEBUG on or pass --stripe-api-base.")
        try:
            flow = PaymentFlow.objects.select_related("tenant").filter(uuid=options["flow"]).first()
        except ValidationError:
            flow = None
        if flow is None:
            raise CommandError(f"No payment flow {options['flow']!r}.")
        connectors = flow.tenant.connectors.filter(mode=ConnectorInstance.Mode.TEST)
        if not connectors.filter(pk=flow.connector_id).exists():
            raise CommandError("The flow's connector is in live mode: simulated calls never use live connectors.")
        base = (options["base_url"] or settings.PAYDESK_PUBLIC_BASE_URL).rstrip("/")
        caller = Caller(
            gather=_answers(flow, options),
            card=options["card"],
            expiry=options["expiry"],
            cvc=options["cvc"],
            postal=options["postal"],
        )
        result = IvrCall(
            voice_url=base + reverse("ivr-voice", kwargs={"token": flow.voice_token}),
            account_sid=flow.tenant.twilio_account_sid,
            auth_token=tenant_twilio_auth_token(tenant=flow.tenant),
            caller=caller,
            connectors={
                c.unique_name: {"stripe_secret_key": connector_stripe_secret_key(connector=c)} for c in connectors
            },
            stripe_api_base=options["stripe_api_base"] or settings.STRIPE_API_BASE_URL,
        ).play()
        outcome = result.pay_results[-1] if result.pay_results else {}
        if options["json"]:
            payload = {"call_sid": result.call_sid, "lines": result.lines, "pay_results": result.pay_results}
            self.stdout.write(json.dumps(payload, sort_keys=True))
        else:
            self.stdout.write("\n".join(result.lines))
            self.stdout.write(
                f"\nCall {result.call_sid}: result={outcome.get('Result', '-')} "
                f"confirmation={outcome.get('PaymentConfirmationCode', '-')} token={outcome.get('PaymentToken', '-')} "
                f"error={outcome.get('PaymentError', '-')}"
            )
        problem = _not_as_requested(outcome, expect=options["expect"], ended=result.ended)
        if problem:
            raise CommandError(problem)


def _answers(flow: PaymentFlow, options: dict) -> list[str]:
    """The caller's answer to each <Gather>, in order."""
    answers: list[str] = []
    charging = flow.operation == PaymentFlow.Operation.CHARGE
    if charging and flow.amount_source == PaymentFlow.AmountSource.REFERENCE:
        if not options["reference"]:
            raise CommandError("This flow is paid by reference: pass --reference.")
        answers = [options["reference"], options["confirm"]]
    elif charging and flow.amount_source == PaymentFlow.AmountSource.CALLER:
        if not options["amount_digits"]:
            raise CommandError("The caller keys the amount in this flow: pass --amount-digits (e.g. 12 50).")
        answers = [*options["amount_digits"], options["confirm"]]
    return [*answers, *options["then"]]


def _not_as_requested(outcome: dict, *, expect: str, ended: str) -> str:
    """Why the call did not end as asked ("" when it did): the command's exit status."""
    if not outcome:
        return f"The call ended before the payment step ({ended or 'no reason given'})."
    result = outcome.get("Result", "")
    if expect == "success" and result != "success":
        return f"The payment did not succeed: result {result or 'none'} ({outcome.get('PaymentError') or ended})."
    if expect == "failure" and result == "success":
        return "The payment succeeded, but a failure was expected."
    return ""
