from rest_framework import serializers

from connectors.models import ConnectorInstance


class VerificationSerializer(serializers.Serializer):
    status = serializers.CharField(source="verify_status")
    last_verified_at = serializers.DateTimeField()
    last_attempt_at = serializers.DateTimeField(source="last_verify_attempt_at")
    last_error = serializers.CharField(source="last_verify_error")


class ConnectorSerializer(serializers.ModelSerializer):
    """Secrets are write-only: after saving, only their last 4 characters are shown."""

    id = serializers.UUIDField(source="uuid", read_only=True)
    mode = serializers.ChoiceField(choices=ConnectorInstance.Mode.choices, required=False)
    stripe_secret_key = serializers.CharField(write_only=True, required=False, trim_whitespace=True)
    stripe_webhook_secret = serializers.CharField(write_only=True, required=False, allow_blank=True)
    verification = VerificationSerializer(source="*", read_only=True)

    class Meta:
        model = ConnectorInstance
        fields = [
            "id",
            "unique_name",
            "provider",
            "environment",
            "mode",
            "stripe_secret_key",
            "stripe_secret_key_last4",
            "stripe_webhook_secret",
            "stripe_webhook_secret_last4",
            "is_active",
            "notes",
            "verification",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["stripe_secret_key_last4", "stripe_webhook_secret_last4", "created_at", "updated_at"]
        # Uniqueness per tenant is checked by the service (the serializer has no tenant).
        validators: list = []

    def validate(self, attrs):
        if self.instance is None and not attrs.get("stripe_secret_key"):
            raise serializers.ValidationError({"stripe_secret_key": ["This field is required."]})
        return attrs
