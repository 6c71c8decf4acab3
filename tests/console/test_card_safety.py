"""The console never shows a full card number, whatever the callbacks say.

Callbacks carrying full card numbers in any parameter, grouped any way, go through the
real path (normalise, store, fold) and then straight into stored rows too (as if
written before the tripwire existed); the session page, its state JSON and the
embedded page must still hold no Luhn-valid run of 12-19 digits."""

import re

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from core.cardsafe import luhn_valid
from payments.console.services import console_link_create
from payments.sessions.models import PayEvent, PaySession
from tenants.services import Actor

pytestmark = pytest.mark.django_db

# A run of digits, maybe grouped by single spaces or dashes, not glued to letters.
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d)*(?![0-9A-Za-z])")

PARAMS = [
    "PaymentCardNumber",
    "PaymentCardType",
    "ExpirationDate",
    "SecurityCode",
    "PaymentCardPostalCode",
    "BankRoutingNumber",
    "BankAccountNumber",
    "ErrorType",
    "PaymentError",
    "ConnectorError",
    "PaymentConfirmationCode",
    "PaymentToken",
    "Capture",
    "Required",
]


def full_card_numbers(text: str) -> list[str]:
    """Every Luhn-valid 12-19 digit run, however grouped (what a reader would take for a
    card number)."""
    runs = (re.sub(r"\D", "", match.group()) for match in _DIGIT_RUN.finditer(text))
    return [digits for digits in runs if 12 <= len(digits) <= 19 and luhn_valid(digits)]


def _with_luhn(prefix: str, length: int) -> str:
    body = prefix + "0" * (length - len(prefix) - 1)
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


card_numbers = st.builds(
    _with_luhn, st.sampled_from(["4242", "5555", "3782", "6011", "3530"]), st.integers(min_value=13, max_value=19)
)


def _grouped(number: str, separator: str) -> str:
    return separator.join(number[i : i + 4] for i in range(0, len(number), 4))


def test_the_check_finds_a_card_number_however_it_is_written():
    assert full_card_numbers("card 4242 4242 4242 4242 ok") == ["4242424242424242"]
    assert full_card_numbers("<b>4242-4242-4242-4242</b>") == ["4242424242424242"]
    assert full_card_numbers("xxxxxxxxxxxx4242 and 12/30 and 94105") == []


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    number=card_numbers,
    separator=st.sampled_from(["", " ", "-"]),  # the groupings core/cardsafe.py recognises
    where=st.lists(st.sampled_from(PARAMS), min_size=1, max_size=5, unique=True),
    final=st.booleans(),
)
def test_no_page_of_the_console_ever_holds_a_full_card_number(
    client, agents, session_of, callbacks, world, number, separator, where, final
):
    session = session_of(agents["ann"])
    written = _grouped(number, separator)
    noisy = {name: f"{written}" if name != "PaymentError" else f"card {written} declined" for name in where}
    capture = {"Capture": "payment-card-number", "PartialResult": "false", "Required": "ExpirationDate"}
    callbacks(session, **{**capture, **noisy})
    if final:
        callbacks(session, **{"Result": "payment-connector-error", "PayErrorCode": "64012", **noisy})
    # And rows that say it outright, as if stored before the tripwire existed.
    PaySession.objects.filter(pk=session.pk).update(
        payment_error=f"declined {written}",
        connector_error=written,
        twilio_error_message=f"bad {written}",
        description=f"ref {written}",
        card_type=written[:32],
        postal_code_value=number[:16],
        bank_routing_number=number[:16],
    )
    PayEvent.objects.filter(session=session).update(payload={"PaymentError": written, "Capture": "payment-card-number"})

    client.force_login(agents["ann"])
    pages = [
        client.get(f"/console/sessions/{session.uuid}/").content.decode(),
        client.get(f"/console/sessions/{session.uuid}/state", HTTP_ACCEPT="application/json").content.decode(),
    ]
    _, url = console_link_create(
        session=session, api_key=world.acme.api_key, agent_reference=written, actor=Actor.system("test")
    )
    pages.append(client.get(url.removeprefix("http://testserver")).content.decode())
    for page in pages:
        assert number not in re.sub(r"[ -]", "", page)
        assert full_card_numbers(page) == []
