"""The voice prompts of a payment flow: the catalogue, its English defaults, and rendering.

A tenant overrides any prompt on its flow (PaymentFlow.prompts, key → text). Prompts may
use the placeholders below, replaced when spoken. A tenant's text is spoken in the
flow's language; a default (English) text in the flow's language when that is an
English one, else in en-US, so that it is never read with a foreign voice.
"""

import re
from dataclasses import dataclass, field

from twilio.twiml.voice_response import Say

from payments.ivr import amounts

# key → (label, default text), in the order a call meets them.
PROMPTS: dict[str, tuple[str, str]] = {
    "greeting": ("Greeting", "Thank you for calling {business}."),
    "amount_units": (
        "Amount entry: whole units",
        "Please enter the amount you wish to pay in {major_units}, then press the pound key.",
    ),
    "amount_minor": (
        "Amount entry: cents",
        "Now enter the {minor_units}, then press the pound key. If there are none, just press pound.",
    ),
    "amount_star": (
        "Amount entry: one entry with star",
        "Please enter the amount you wish to pay, using the star key as the decimal point, then press "
        "the pound key. For example, for twelve {major_units} and fifty {minor_units}, press one, two, "
        "star, five, zero, pound.",
    ),
    "reference_entry": ("Reference entry", "Please enter your account or invoice number, then press the pound key."),
    "reference_readback": ("Reference read-back", "For reference {reference}, the amount due is {amount}."),
    "reference_not_found": ("Reference not found", "Sorry, we could not find a payment due for that number."),
    "fixed_amount": ("Fixed amount", "The amount to pay is {amount}."),
    "readback": ("Amount read-back", "You entered {amount}."),
    "confirm": ("Confirm or re-enter", "To confirm, press 1. To enter it again, press 2."),
    "no_input": ("No input", "Sorry, I did not get that."),
    "amount_unreadable": ("Error: unreadable amount", "Sorry, that is not an amount I can take."),
    "amount_decimals": ("Error: too many decimals", "That amount has too many digits after the decimal point."),
    "amount_zero": ("Error: zero amount", "The amount must be more than zero."),
    "amount_below_minimum": ("Error: below the minimum", "The smallest amount you can pay is {minimum}."),
    "amount_above_maximum": ("Error: above the maximum", "The largest amount you can pay is {maximum}."),
    "too_many_attempts": (
        "Giving up after the last attempt",
        "Sorry, we could not take your payment. Please call again later. Goodbye.",
    ),
    "pay_payment_card_number": ("Card number", "Please enter your card number, then press the pound key."),
    "pay_expiration_date": (
        "Expiration date",
        "Please enter the expiration date: two digits for the month, then two for the year.",
    ),
    "pay_security_code": ("Security code", "Please enter the three digit security code on the back of your card."),
    "pay_security_code_amex": (
        "Security code (American Express)",
        "Please enter the four digit security code on the front of your card.",
    ),
    "pay_postal_code": ("Postal code", "Please enter the billing postal code, then press the pound key."),
    "error_timeout": ("Card error: no input", "Sorry, I did not receive any input."),
    "error_invalid_card_number": ("Card error: invalid card number", "That card number is not valid."),
    "error_invalid_card_type": ("Card error: card type not accepted", "Sorry, we do not accept that type of card."),
    "error_invalid_date": ("Card error: invalid expiration date", "That expiration date is not valid."),
    "error_invalid_security_code": ("Card error: invalid security code", "That security code is not valid."),
    "error_invalid_postal_code": ("Card error: invalid postal code", "That postal code is not valid."),
    "processing": ("Payment processing", "Thank you. Please wait while we process your payment."),
    "success": ("Success", "Your payment of {amount} was successful. Thank you. Goodbye."),
    "success_tokenized": ("Success (card saved)", "Your card has been saved. Thank you. Goodbye."),
    "declined": ("Failure: declined", "Sorry, your payment could not be processed."),
    "retry_offer": ("Offer another card", "To try another card, press 1. To end the call, press 2."),
    "cancelled": ("Failure: cancelled by the caller", "You cancelled the payment. Goodbye."),
    "failure": ("Failure", "Sorry, we could not complete your payment. Goodbye."),
    "goodbye": ("Goodbye", "Goodbye."),
    "unavailable": ("Flow unavailable", "Sorry, we cannot take payments on this number right now. Goodbye."),
}

PLACEHOLDERS = frozenset({"business", "amount", "major_units", "minor_units", "reference", "minimum", "maximum"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")


def placeholder_errors(text: str) -> list[str]:
    """Problems with a tenant's prompt text: unknown placeholders and stray braces."""
    errors = [f"Unknown placeholder {{{name}}}." for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS]
    if "{" in _PLACEHOLDER.sub("", text) or "}" in _PLACEHOLDER.sub("", text):
        errors.append("Braces are only for placeholders such as {amount}.")
    return errors


def fill(text: str, values: dict[str, str]) -> str:
    """Replace known placeholders; never str.format (a tenant's text is not code)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True)
class Speaker:
    """Renders a flow's prompts: as text, or as <Say> elements (twilio.twiml) to nest in
    a <Response>, <Gather> or <Prompt>."""

    language: str
    currency: str
    business: str = ""
    minimum: int | None = None
    maximum: int | None = None
    overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_flow(cls, flow) -> "Speaker":
        return cls(
            language=flow.language,
            currency=flow.currency,
            business=flow.tenant.name,
            minimum=flow.min_amount_minor,
            maximum=flow.max_amount_minor,
            overrides={k: v for k, v in (flow.prompts or {}).items() if k in PROMPTS and v.strip()},
        )

    def text(
        self, key: str, *, amount: int | None = None, reference: str = "", amount_text: str | None = None
    ) -> tuple[str, str]:
        """(text, language) of one prompt. `amount_text` says the amount as given (the
        Studio export puts Liquid expressions there)."""
        if key in self.overrides:
            template, language = self.overrides[key], self.language
        else:
            template = PROMPTS[key][1]
            language = self.language if amounts.is_english(self.language) else "en-US"
        major_units, minor_units = amounts.unit_names(self.currency)
        values = {
            "business": self.business,
            "major_units": major_units,
            "minor_units": minor_units,
            "reference": amounts.spelled(reference),
            "amount": amount_text if amount_text is not None else self._amount(amount, language),
            "minimum": self._amount(self.minimum, language),
            "maximum": self._amount(self.maximum, language),
        }
        return fill(template, values).strip(), language

    def say(self, key: str, **kwargs) -> Say:
        """The prompt as a detached <Say>: append it where it is spoken."""
        text, language = self.text(key, **kwargs)
        return Say(text, language=language or None)

    def _amount(self, amount_minor: int | None, language: str) -> str:
        return "" if amount_minor is None else amounts.spoken_amount(amount_minor, self.currency, language)
