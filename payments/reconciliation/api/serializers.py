from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from payments.reconciliation import selectors
from payments.reconciliation.models import ReconciliationItem


class ReconciliationItemSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid")
    connector = serializers.CharField(source="connector.unique_name")
    environment = serializers.CharField(source="connector.environment")
    status = serializers.SerializerMethodField()
    session = serializers.SerializerMethodField()
    stripe_dashboard_url = serializers.SerializerMethodField()
    paydesk = serializers.JSONField(source="paydesk_data")
    stripe = serializers.JSONField(source="stripe_data")
    resolved_by = serializers.SerializerMethodField()

    class Meta:
        model = ReconciliationItem
        fields = [
            "id",
            "connector",
            "environment",
            "reason",
            "status",
            "session",
            "stripe_object_id",
            "stripe_dashboard_url",
            "detail",
            "paydesk",
            "stripe",
            "opened_at",
            "last_seen_at",
            "resolved_at",
            "resolved_by",
            "resolution_note",
        ]
        read_only_fields = fields

    def get_status(self, obj) -> str:
        return "open" if obj.is_open else "resolved"

    def get_session(self, obj) -> str | None:
        return str(obj.session.uuid) if obj.session_id else None

    def get_stripe_dashboard_url(self, obj) -> str:
        return selectors.item_dashboard_url(obj)

    def get_resolved_by(self, obj) -> str:
        return obj.resolved_by.get_username() if obj.resolved_by_id else ""


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "description": "What Stripe says about the session (null until first checked). state: matched, pending, "
        "amount_mismatch, currency_mismatch, missing_in_stripe, refunded, partially_refunded, "
        "refund_missing_in_stripe, disputed, stripe_only.",
    }
)
class SessionReconciliationField(serializers.Field):
    """For PaySessionSerializer: `reconciliation = SessionReconciliationField(source="*", read_only=True)`."""

    def to_representation(self, session):
        return selectors.session_reconciliation_summary(session)
