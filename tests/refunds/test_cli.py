"""`manage.py refund`: the house's operator command (--json, one-line errors)."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.models import AuditEvent
from tests.refunds.conftest import paid, stripe_refunds

pytestmark = pytest.mark.django_db


def refund_cli(*args) -> str:
    out = StringIO()
    call_command("refund", *args, stdout=out)
    return out.getvalue()


def test_the_command_refunds_part_then_the_rest(world, dev, stripe_objects):
    session, intent = paid(dev, stripe_objects, amount=2000)

    part = json.loads(
        refund_cli(
            "--tenant", "acme", "--session", str(session.uuid), "--amount", "5.00", "--reason", "duplicate", "--json"
        )
    )
    rest = refund_cli("--tenant", "acme", "--session", str(session.uuid), "--note", "the rest")

    assert (part["amount"], part["currency"], part["status"], part["replayed"]) == ("5.00", "USD", "succeeded", False)
    assert part["stripe_refund_id"].startswith("re_")
    assert rest.startswith("Refund ") and "of 15.00 USD: succeeded (re_" in rest
    assert sorted(r["amount"] for r in stripe_refunds(stripe_objects, intent)) == [500, 1500]
    assert AuditEvent.objects.filter(action="refund.created", actor="cli").count() == 2


def test_a_rerun_with_the_same_key_refunds_nothing_more(world, dev, stripe_objects):
    session, intent = paid(dev, stripe_objects, amount=2000)
    args = (
        "--tenant",
        "acme",
        "--session",
        str(session.uuid),
        "--amount",
        "1.00",
        "--idempotency-key",
        "ops-1",
        "--json",
    )

    first, again = json.loads(refund_cli(*args)), json.loads(refund_cli(*args))

    assert first["id"] == again["id"] and again["replayed"] is True
    assert len(stripe_refunds(stripe_objects, intent)) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (("--tenant", "nope", "--session", "00000000-0000-0000-0000-000000000000"), "No tenant with slug 'nope'."),
        (("--tenant", "acme", "--session", "not-a-uuid"), "No pay session not-a-uuid in tenant acme."),
        (
            ("--amount", "50.00"),
            "50.00 USD is more than what remains to refund (20.00 USD of 20.00 USD). (amount_too_large)",
        ),
        (("--amount", "1.001"), "--amount: USD amounts have at most 2 decimal places."),
    ],
)
def test_bad_input_is_one_line_and_refunds_nothing(world, dev, stripe_objects, args, message):
    session, intent = paid(dev, stripe_objects, amount=2000)
    if args[0] != "--tenant":
        args = ("--tenant", "acme", "--session", str(session.uuid), *args)

    with pytest.raises(CommandError) as refused:
        refund_cli(*args)

    assert str(refused.value) == message
    assert stripe_refunds(stripe_objects, intent) == []


def test_another_tenants_session_is_not_found(world, stripe_objects):
    theirs, _ = paid(world.globex.connectors["Stripe_Dev"], stripe_objects)
    with pytest.raises(CommandError, match="No pay session"):
        refund_cli("--tenant", "acme", "--session", str(theirs.uuid))
