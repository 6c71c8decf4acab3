from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core import money
from payments.refunds import selectors
from payments.refunds.models import Refund
from payments.refunds.services import RefundRequest


class RefundCreateSerializer(serializers.Serializer):
    amount = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=32,
        help_text='Major units in the session\'s currency, e.g. "5.00". Omitted: what remains to refund.',
    )
    reason = serializers.ChoiceField(
        choices=Refund.Reason.choices, required=False, allow_blank=True, help_text="Stripe's reason, if one fits."
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, help_text="Why, in your words.")

    def validate(self, attrs):
        session = self.context["session"]
        amount_minor = None
        if attrs.get("amount") not in (None, ""):
            try:
                amount_minor = money.parse_major(attrs["amount"], session.currency)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"amount": exc.messages}) from None
            if amount_minor <= 0:
                raise serializers.ValidationError({"amount": ["The amount must be positive."]})
        attrs["request"] = RefundRequest(
            amount_minor=amount_minor, reason=attrs.get("reason") or "", note=attrs.get("note") or ""
        )
        return attrs


class RefundSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid")
    pay_session = serializers.UUIDField(source="session.uuid")
    connector = serializers.CharField(source="connector.unique_name")
    amount = serializers.SerializerMethodField(help_text="Major units, in `currency`.")
    made_outside_paydesk = serializers.BooleanField(help_text="Made in Stripe (its dashboard), seen by reconciliation.")
    # Blank when none was given: declared so that the document says so.
    reason = serializers.ChoiceField(choices=Refund.Reason.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Refund
        fields = [
            "id",
            "pay_session",
            "connector",
            "amount",
            "amount_minor",
            "currency",
            "reason",
            "note",
            "status",
            "failure_reason",
            "stripe_refund_id",
            "origin",
            "made_outside_paydesk",
            "requested_by",
            "refunded_at",
            "created_at",
            "updated_at",
            "completed_at",
        ]
        read_only_fields = fields

    def get_amount(self, obj) -> str:
        return money.to_major_string(obj.amount_minor, obj.currency)


class _RefundTotalField(serializers.Field):
    """A refund total of a pay session (registered on the pay-session serializer by
    RefundsConfig.ready()). In a list, the totals of the whole page are read in one query,
    kept on the root serializer."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def value_of(self, totals: selectors.RefundTotals) -> int:
        raise NotImplementedError

    def to_representation(self, session):
        if session.amount_minor is None:
            return None
        return money.to_major_string(self.value_of(self._totals(session)), session.currency)

    def _totals(self, session) -> selectors.RefundTotals:
        root = self.root
        cache = getattr(root, "_paydesk_refund_totals", None)
        if cache is None or session.pk not in cache:
            page = root.instance if isinstance(root.instance, list | tuple) else ()
            cache = selectors.refund_totals(list(page) if session in page else [session])
            root._paydesk_refund_totals = cache
        return cache[session.pk]


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "description": "What succeeded refunds gave back, in major units of the session's currency; "
        "null for a tokenize-only session.",
    }
)
class AmountRefundedField(_RefundTotalField):
    def value_of(self, totals):
        return totals.refunded


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "description": "What a new refund may take now, in major units: the amount less succeeded and pending "
        'refunds ("0.00" unless the session succeeded); null for a tokenize-only session.',
    }
)
class RefundableAmountField(_RefundTotalField):
    def value_of(self, totals):
        return totals.refundable
