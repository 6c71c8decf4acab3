from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from rest_framework import serializers

from core import money
from payments.ivr.models import PaymentFlow, PaymentReference


def _major(amount_minor: int | None, currency: str) -> str | None:
    return None if amount_minor is None else money.to_major_string(amount_minor, currency)


class PaymentFlowSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    connector = serializers.CharField(source="connector.unique_name", read_only=True)
    fixed_amount = serializers.SerializerMethodField(help_text="Major units, e.g. 12.50.")
    min_amount = serializers.SerializerMethodField(help_text="Major units; null: no minimum.")
    max_amount = serializers.SerializerMethodField(help_text="Major units; null: no maximum.")
    voice_url = serializers.SerializerMethodField(help_text="Set this as the Twilio number's voice webhook (POST).")

    class Meta:
        model = PaymentFlow
        fields = [
            "id",
            "name",
            "is_active",
            "connector",
            "operation",
            "token_type",
            "currency",
            "amount_source",
            "amount_entry",
            "fixed_amount",
            "min_amount",
            "max_amount",
            "language",
            "max_attempts",
            "retry_on_decline",
            "voice_url",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_fixed_amount(self, flow) -> str | None:
        return _major(flow.fixed_amount_minor, flow.currency)

    def get_min_amount(self, flow) -> str | None:
        return _major(flow.min_amount_minor, flow.currency)

    def get_max_amount(self, flow) -> str | None:
        return _major(flow.max_amount_minor, flow.currency)

    def get_voice_url(self, flow) -> str:
        return settings.PAYDESK_PUBLIC_BASE_URL + reverse("ivr-voice", kwargs={"token": flow.voice_token})


class PaymentReferenceSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    amount = serializers.SerializerMethodField(help_text="Major units, e.g. 12.50.")
    paid_session = serializers.UUIDField(source="paid_session.uuid", read_only=True, allow_null=True, default=None)

    class Meta:
        model = PaymentReference
        fields = ["id", "reference", "amount", "currency", "description", "status", "paid_session", "paid_at",
                  "created_at", "updated_at"]  # fmt: skip
        read_only_fields = fields

    def get_amount(self, row) -> str:
        return money.to_major_string(row.amount_minor, row.currency)


class PaymentReferenceRegisterSerializer(serializers.Serializer):
    """What a partner app registers before the caller rings: reference → amount due."""

    reference = serializers.RegexField(
        r"^[0-9]{1,32}\Z", error_messages={"invalid": "A reference is 1 to 32 digits: callers key it in."}
    )
    amount = serializers.CharField(max_length=32, help_text="Major units in the flow's currency, e.g. 12.50.")
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)

    def validate_amount(self, value):
        flow = self.context["flow"]
        try:
            amount_minor = money.parse_major(value, flow.currency)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        if amount_minor <= 0:
            raise serializers.ValidationError("The amount must be more than zero.")
        return amount_minor
