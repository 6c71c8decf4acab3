from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from config.errors import ServiceError
from core import money
from payments.refunds.models import Refund
from payments.refunds.services import RefundRequest, refund_create
from payments.sessions.models import PaySession
from tenants.management.cli import OperatorCommand
from tenants.models import Tenant
from tenants.services import Actor


class Command(OperatorCommand):
    help = (
        "Refund a pay session through its connector's Stripe account (all that remains, or --amount). "
        "Re-running with the same --idempotency-key never refunds twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--session", required=True, help="The pay session's id (UUID).")
        parser.add_argument(
            "--amount", help='Major units in the session\'s currency, e.g. "5.00". Default: what remains.'
        )
        parser.add_argument("--reason", choices=Refund.Reason.values, default="")
        parser.add_argument("--note", default="", help="Why, in your words.")
        parser.add_argument("--idempotency-key", help="Makes a re-run safe (the same refund, never a second one).")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        try:
            session = PaySession.objects.select_related("tenant", "connector").get(
                tenant=tenant, uuid=options["session"]
            )
        except (PaySession.DoesNotExist, ValidationError):
            raise CommandError(f"No pay session {options['session']} in tenant {tenant.slug}.") from None
        amount_minor = None
        if options["amount"]:
            try:
                amount_minor = money.parse_major(options["amount"], session.currency)
            except ValidationError as exc:
                raise CommandError(f"--amount: {' '.join(exc.messages)}") from None
            if amount_minor <= 0:
                raise CommandError("--amount: the amount must be positive.")
        try:
            refund, made = refund_create(
                session=session,
                request=RefundRequest(amount_minor=amount_minor, reason=options["reason"], note=options["note"]),
                idempotency_key=options["idempotency_key"],
                actor=Actor.system("cli"),
            )
        except ServiceError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from None
        amount = money.to_major_string(refund.amount_minor, refund.currency)
        self.emit(
            options,
            {
                "id": refund.uuid,
                "session": session.uuid,
                "amount": amount,
                "currency": refund.currency,
                "status": refund.status,
                "stripe_refund_id": refund.stripe_refund_id,
                "replayed": not made,
            },
            f"Refund {refund.uuid} of {amount} {refund.currency}: {refund.status} "
            f"({refund.stripe_refund_id or 'no Stripe id'}){' (replayed)' if not made else ''}",
        )
