from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api import EveryErrorAtOnce
from connectors.selectors import connector_by_name
from core import money
from core.cardsafe import mask_card_numbers, tripwire_fired
from payments.sessions import extensions
from payments.sessions.models import CAPTURE_FIELDS, CARD_FIELDS, MATCHER_FIELDS, PayEvent, PaySession
from payments.sessions.services import SessionRequest

CARD_TYPES = ["visa", "mastercard", "amex", "maestro", "discover", "optima", "jcb", "diners-club", "enroute"]
_SCALARS = (str, int, float, bool, type(None))


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
class SpaceSeparatedField(serializers.Field):
    """Accepts "visa amex" or ["visa", "amex"]; each item must be one of `choices`."""

    def __init__(self, *, choices: list[str], separator: str = " ", **kwargs):
        self.choices, self.separator = choices, separator
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        items = data.replace(",", " ").split() if isinstance(data, str) else data
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise serializers.ValidationError("Give a list of names or a space-separated string.")
        bad = [i for i in items if i not in self.choices]
        if bad:
            raise serializers.ValidationError(f"Unknown: {', '.join(bad)}. Choose from {', '.join(self.choices)}.")
        return list(dict.fromkeys(items))

    def to_representation(self, value):
        return value


# Twilio's rules: docs/twilio-pay.md §1.1.
class PaySessionCreateSerializer(EveryErrorAtOnce, serializers.Serializer):
    """Mirrors Twilio's rules for CreatePayments, so a partner gets a clear 400 before
    Twilio is called, naming every invalid field at once."""

    call_sid = serializers.RegexField(
        r"^CA[0-9a-fA-F]{32}\Z",
        error_messages={"invalid": "Enter the Call SID: CA followed by 32 hexadecimal characters."},
    )
    connector = serializers.CharField(default="Default", max_length=64)
    charge_amount = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=32,
        help_text='Major units as Twilio takes them, e.g. "12.50" (ASCII digits, no sign). Omitted or 0: tokenize.',
    )
    currency = serializers.CharField(required=False, max_length=3, help_text="ISO 4217; default: the tenant's.")
    payment_method = serializers.ChoiceField(choices=PaySession.PaymentMethod.choices, default="credit-card")
    token_type = serializers.ChoiceField(choices=PaySession.TokenType.choices, required=False)
    postal_code = serializers.BooleanField(default=True)
    security_code = serializers.BooleanField(default=True)
    min_postal_code_length = serializers.IntegerField(required=False, min_value=1, max_value=16)
    valid_card_types = SpaceSeparatedField(choices=CARD_TYPES, required=False)
    timeout = serializers.IntegerField(required=False, min_value=1, max_value=600)
    bank_account_type = serializers.ChoiceField(choices=PaySession.BankAccountType.choices, required=False)
    confirmation = serializers.BooleanField(default=False)
    require_matching_inputs = SpaceSeparatedField(choices=CARD_FIELDS, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=200)
    parameter = serializers.DictField(required=False, help_text="A flat JSON object; required for ach-debit.")

    def validate_parameter(self, value):
        nested = [k for k, v in value.items() if not isinstance(v, _SCALARS)]
        if nested:
            raise serializers.ValidationError(f"Must be a flat object; nested values in: {', '.join(nested)}.")
        return value

    def validate_connector(self, name):
        """The connector instance of that name in the caller's tenant."""
        connector = connector_by_name(tenant=self.context["tenant"], unique_name=name)
        if connector is None:
            raise serializers.ValidationError(f"No connector named {name!r} in this tenant.")
        if not connector.is_active:
            raise serializers.ValidationError(f"The connector {name!r} is disabled.")
        return connector

    def validate_currency(self, value):
        money.validate_currency(value)
        return value

    def validate_charge_amount(self, value):
        if value not in (None, ""):
            money.parse_decimal(value)  # the syntax; the currency's decimals are checked in validate()
        return value

    def validate(self, attrs):
        tenant = self.context["tenant"]
        invalid = self.invalid_fields
        errors: dict[str, list[str]] = {}
        currency = attrs.get("currency") or tenant.default_currency
        amount_minor = None
        raw_amount = attrs.get("charge_amount")
        if raw_amount not in (None, "") and "currency" not in invalid:
            try:
                amount_minor = money.parse_major(raw_amount, currency) or None  # 0 means tokenize
            except DjangoValidationError as exc:
                errors["charge_amount"] = exc.messages
        method = attrs.get("payment_method")
        ach = method == PaySession.PaymentMethod.ACH_DEBIT
        if amount_minor is not None and attrs.get("token_type"):
            errors["token_type"] = [
                "Give a token_type only when tokenizing (no charge_amount): "
                "with an amount, the method is charged, not tokenized."
            ]
        if ach and not attrs.get("parameter") and "parameter" not in invalid:
            errors["parameter"] = ["Required for ach-debit: the connector's ACH parameters as a flat object."]
        if method and not ach and attrs.get("bank_account_type"):
            errors["bank_account_type"] = ["Only for ach-debit."]
        if ach:
            for name in ("valid_card_types", "require_matching_inputs", "min_postal_code_length"):
                if attrs.get(name):
                    errors[name] = ["Only for credit-card."]
        matching = attrs.get("require_matching_inputs") or []
        for name, flag in (("security-code", "security_code"), ("postal-code", "postal_code")):
            if name in matching and attrs.get(flag) is False:
                errors.setdefault("require_matching_inputs", []).append(f"{name} is not asked for ({flag} is false).")
        if attrs.get("min_postal_code_length") and attrs.get("postal_code") is False:
            errors["min_postal_code_length"] = ["postal_code is false, so no postal code is asked for."]
        if errors:
            raise serializers.ValidationError(errors)
        if invalid:
            return attrs  # the field errors are the answer; there is nothing to build
        connector = attrs["connector"]
        description, hits = mask_card_numbers(attrs.get("description", ""))
        if hits:
            tripwire_fired(count=hits, source="pay session description")
        attrs["connector_instance"] = connector
        attrs["connector"] = connector.unique_name
        attrs["request"] = SessionRequest(
            call_sid=attrs["call_sid"],
            amount_minor=amount_minor,
            currency=currency,
            payment_method=attrs["payment_method"],
            token_type=(attrs.get("token_type") or PaySession.TokenType.REUSABLE) if amount_minor is None else "",
            postal_code=attrs["postal_code"] and not ach,
            security_code=attrs["security_code"] and not ach,
            min_postal_code_length=attrs.get("min_postal_code_length"),
            valid_card_types=" ".join(attrs.get("valid_card_types") or []),
            timeout=attrs.get("timeout"),
            bank_account_type=(attrs.get("bank_account_type") or "consumer-checking") if ach else "",
            confirmation=attrs["confirmation"],
            require_matching_inputs=tuple(matching),
            description=description,
            parameter=tuple(sorted((attrs.get("parameter") or {}).items())),
        )
        return attrs


class CaptureSerializer(serializers.Serializer):
    capture = serializers.ChoiceField(choices=CAPTURE_FIELDS + MATCHER_FIELDS)


class PaySessionSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid")
    # Blank when they do not apply (a charge has no token_type, a card no bank_account_type).
    token_type = serializers.ChoiceField(choices=PaySession.TokenType.choices, allow_blank=True, read_only=True)
    bank_account_type = serializers.ChoiceField(
        choices=PaySession.BankAccountType.choices, allow_blank=True, read_only=True
    )
    connector = serializers.CharField(source="connector.unique_name")
    environment = serializers.CharField(source="connector.environment")
    charge_amount = serializers.SerializerMethodField(help_text="Major units; null when tokenizing.")
    card = serializers.SerializerMethodField()
    bank = serializers.SerializerMethodField()
    outcome = serializers.SerializerMethodField()
    twilio_error = serializers.SerializerMethodField()
    started_by = serializers.SerializerMethodField()

    class Meta:
        model = PaySession
        fields = [
            "id",
            "connector",
            "environment",
            "channel",
            "call_sid",
            "payment_sid",
            "status",
            "payment_method",
            "charge_amount",
            "amount_minor",
            "currency",
            "token_type",
            "postal_code",
            "security_code",
            "min_postal_code_length",
            "valid_card_types",
            "timeout",
            "bank_account_type",
            "confirmation",
            "require_matching_inputs",
            "description",
            "parameter",
            "capturing_field",
            "required_fields",
            "last_error_type",
            "card",
            "bank",
            "outcome",
            "twilio_error",
            "started_by",
            "created_at",
            "updated_at",
            "completed_at",
        ]
        read_only_fields = fields

    def get_fields(self):
        # Peer apps add their part of a session after the app's own fields
        # (payments.sessions.extensions), e.g. "reconciliation".
        return {**super().get_fields(), **extensions.api_fields()}

    def get_charge_amount(self, obj) -> str | None:
        return None if obj.amount_minor is None else money.to_major_string(obj.amount_minor, obj.currency)

    def get_card(self, obj) -> dict:
        return {
            "number_masked": obj.card_number_masked,
            "last4": obj.card_last4,
            "type": obj.card_type,
            "expiration": obj.card_expiration,
            "postal_code": obj.postal_code_value,
        }

    def get_bank(self, obj) -> dict:
        return {"routing_number": obj.bank_routing_number, "account_last2": obj.bank_account_last2}

    def get_outcome(self, obj) -> dict:
        return {
            "result": obj.result,
            "payment_confirmation_code": obj.payment_confirmation_code,
            "payment_token": obj.payment_token,
            "profile_id": obj.profile_id,
            "pay_error_code": obj.pay_error_code,
            "payment_error": obj.payment_error,
            "connector_error": obj.connector_error,
        }

    def get_twilio_error(self, obj) -> dict | None:
        return (
            {"code": obj.twilio_error_code, "message": obj.twilio_error_message}
            if obj.twilio_error_code or obj.twilio_error_message
            else None
        )

    def get_started_by(self, obj) -> str:
        if obj.started_by_api_key_id:
            return f"api_key:{obj.started_by_api_key.prefix}"
        if obj.started_by_user_id:
            return f"user:{obj.started_by_user.get_username()}"
        return ""


class PayEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = PayEvent
        fields = [
            "direction",
            "kind",
            "payload",
            "response",
            "http_status",
            "error_code",
            "idempotency_key",
            "occurred_at",
            "received_at",
            "applied_at",
            "late",
        ]
        read_only_fields = fields
