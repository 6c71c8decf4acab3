"""The "new payment" form. It validates what only the console knows (the tenant's console
settings), then hands the request to the pay-session API's own serializer, so a session
started here is checked exactly as one started through the REST API."""

import uuid

from django import forms

from core import money
from payments.console.models import ConsoleSettings
from payments.sessions.api.serializers import PaySessionCreateSerializer
from payments.sessions.models import PaySession
from tenants.models import Tenant

CHARGE, TOKENIZE = "charge", "tokenize"

# The serializer's field names, as this form names them.
_FORM_NAMES = {"charge_amount": "amount", "description": "reference", "parameter": "account_holder"}

# What contact-centre software may put in the query string of /console/.
PREFILL = ("call_sid", "amount", "currency", "connector", "reference", "mode", "token_type", "payment_method")


class NewPaymentForm(forms.Form):
    call_sid = forms.CharField(
        label="Call SID",
        max_length=34,
        help_text="The call the caller is on: CA followed by 32 characters.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "CA…"}),
    )
    mode = forms.ChoiceField(
        label="Take",
        choices=[(CHARGE, "A payment"), (TOKENIZE, "Save the card only")],
        initial=CHARGE,
        required=False,  # none chosen: a payment
        widget=forms.RadioSelect,
    )
    amount = forms.CharField(
        label="Amount",
        max_length=16,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "placeholder": "12.50"}),
    )
    currency = forms.CharField(
        label="Currency",
        max_length=3,
        min_length=3,
        widget=forms.TextInput(attrs={"autocomplete": "off", "size": 4, "spellcheck": "false"}),
    )
    connector = forms.ChoiceField(label="Connector")
    token_type = forms.ChoiceField(
        label="Save as",
        choices=[
            (PaySession.TokenType.REUSABLE, "Reusable token"),
            (PaySession.TokenType.ONE_TIME, "One-time token"),
            (PaySession.TokenType.PAYMENT_METHOD, "Payment method"),
        ],
        required=False,
        initial=PaySession.TokenType.REUSABLE,
    )
    payment_method = forms.ChoiceField(
        label="Pay by",
        choices=[(PaySession.PaymentMethod.CREDIT_CARD, "Card"), (PaySession.PaymentMethod.ACH_DEBIT, "Bank account")],
        initial=PaySession.PaymentMethod.CREDIT_CARD,
        required=False,  # none chosen: a card
        widget=forms.RadioSelect,
    )
    account_holder = forms.CharField(label="Account holder's name", max_length=100, required=False)
    security_code = forms.BooleanField(label="Ask for the security code", required=False, initial=True)
    postal_code = forms.BooleanField(label="Ask for the postal code", required=False, initial=True)
    reference = forms.CharField(
        label="Reference",
        max_length=200,
        required=False,
        help_text="An invoice or order number; it goes with the payment to the gateway.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, tenant: Tenant, console_settings: ConsoleSettings, connectors: list, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.tenant, self.console_settings = tenant, console_settings
        self.fields["connector"].choices = [(c.unique_name, f"{c.unique_name} ({c.environment})") for c in connectors]
        self.fields["currency"].initial = tenant.default_currency
        self.fields["idempotency_key"].initial = uuid.uuid4().hex
        # The options this tenant lets its agents choose; the others keep their defaults.
        if not console_settings.allow_tokenize:
            del self.fields["mode"], self.fields["token_type"]
        if not console_settings.allow_ach:
            del self.fields["payment_method"], self.fields["account_holder"]
        if not console_settings.allow_skip_security_code:
            del self.fields["security_code"]
        if not console_settings.allow_skip_postal_code:
            del self.fields["postal_code"]
        self.connector_instance = None
        self.session_request = None

    @staticmethod
    def prefill(query) -> dict:
        """Initial values from the query string contact-centre software links with."""
        initial = {name: query.get(name, "").strip() for name in PREFILL if query.get(name, "").strip()}
        if "currency" in initial:
            initial["currency"] = initial["currency"].upper()
        return initial

    def amount_hint(self) -> str:
        currency = (self["currency"].value() or self.tenant.default_currency or "").upper()
        places = money.exponent(currency)
        return f"In {currency}, with {places} decimal places." if places else f"In {currency}, in whole units."

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        tokenize = data.get("mode") == TOKENIZE
        ach = data.get("payment_method") == PaySession.PaymentMethod.ACH_DEBIT
        if not tokenize and not data.get("amount"):
            self.add_error("amount", "Enter the amount to charge, e.g. 12.50.")
            return data
        body = {
            "call_sid": data["call_sid"].strip(),
            "connector": data["connector"],
            "currency": data["currency"].upper(),
            "description": data.get("reference", ""),
            "payment_method": data.get("payment_method") or PaySession.PaymentMethod.CREDIT_CARD,
            "security_code": data.get("security_code", True) if "security_code" in self.fields else True,
            "postal_code": data.get("postal_code", True) if "postal_code" in self.fields else True,
        }
        if tokenize:
            body["token_type"] = data.get("token_type") or PaySession.TokenType.REUSABLE
        else:
            body["charge_amount"] = data["amount"].strip()
        if ach:
            if not data.get("account_holder"):
                self.add_error("account_holder", "Enter the account holder's name.")
                return data
            body["parameter"] = {"AVSName": data["account_holder"]}
            body["postal_code"] = body["security_code"] = False
        incoming = PaySessionCreateSerializer(data=body, context={"tenant": self.tenant})
        if not incoming.is_valid():
            for name, messages in incoming.errors.items():
                target = _FORM_NAMES.get(name, name)
                for message in messages if isinstance(messages, list) else [messages]:
                    self.add_error(target if target in self.fields else None, str(message))
            return data
        self.connector_instance = incoming.validated_data["connector_instance"]
        self.session_request = incoming.validated_data["request"]
        return data
