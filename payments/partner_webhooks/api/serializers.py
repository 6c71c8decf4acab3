import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from payments.outbox import catalogue
from payments.outbox.models import Event
from payments.partner_webhooks.models import WebhookDelivery, WebhookEndpoint


class WebhookEndpointSerializer(serializers.ModelSerializer):
    """The signing secret is shown once (create, rotate-secret); afterwards its last 4."""

    id = serializers.UUIDField(source="uuid", read_only=True)
    url = serializers.CharField(max_length=2000, help_text="https:// (http:// only where allowed for development).")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=catalogue.SUBSCRIBABLE),
        required=False,
        help_text="The event types to receive; empty or omitted: all.",
    )
    secret_last4 = serializers.CharField(read_only=True)
    previous_secret_expires_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Until then the previous secret signs too (after a rotation)."
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "secret_last4",
            "previous_secret_expires_at",
            "failing_since",
            "disabled_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["failing_since", "disabled_reason", "created_at", "updated_at"]


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.SerializerMethodField(help_text="whsec_…: shown this once. Keep it to verify signatures.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]

    def get_secret(self, obj) -> str:
        return self.context["secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    event = serializers.CharField(source="event.public_id", help_text="The event's id, sent as `webhook-id`.")
    event_type = serializers.CharField(source="event.type")
    last_response_body = serializers.CharField(help_text="The first 1024 bytes of the last answer.")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "event_type",
            "status",
            "attempts",
            "last_status_code",
            "last_response_body",
            "last_error",
            "next_attempt_at",
            "first_attempt_at",
            "last_attempt_at",
            "completed_at",
            "created_at",
        ]
        read_only_fields = fields


class EventSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", help_text="Sent as `webhook-id`; dedupe on it.")
    data = serializers.SerializerMethodField()

    class Meta:
        model = Event
        fields = ["id", "type", "created_at", "data"]
        read_only_fields = fields

    @extend_schema_field(
        {"type": "object", "additionalProperties": True, "description": "The object as the REST API showed it then."}
    )
    def get_data(self, obj) -> dict:
        return json.loads(obj.payload)["data"]
