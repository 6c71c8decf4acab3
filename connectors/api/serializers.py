from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from config.api import EveryErrorAtOnce
from connectors import services
from connectors.models import ConnectorInstance


class VerificationSerializer(serializers.Serializer):
    status = serializers.CharField(source="verify_status")
    last_verified_at = serializers.DateTimeField(allow_null=True, help_text="Null until a verification succeeds.")
    last_attempt_at = serializers.DateTimeField(
        source="last_verify_attempt_at", allow_null=True, help_text="Null until the key is first verified."
    )
    last_error = serializers.CharField(source="last_verify_error")


class ConnectorSerializer(EveryErrorAtOnce, serializers.ModelSerializer):
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
        """The live/test guard (services.connector_check_config) is checked here too, so
        that its errors come with the fields' own; the service checks it again."""
        invalid = self.invalid_fields
        errors: dict[str, list[str]] = {}
        key = attrs.get("stripe_secret_key")
        if self.instance is None and not key and "stripe_secret_key" not in invalid:
            errors["stripe_secret_key"] = ["This field is required."]
        environment = attrs.get("environment") or getattr(self.instance, "environment", None)
        if environment and not {"environment", "mode"} & invalid:
            mode = attrs.get("mode") or (self.instance.mode if self.instance and "environment" not in attrs else None)
            try:
                services.connector_check_config(environment=environment, mode=mode, stripe_secret_key=key or None)
            except DjangoValidationError as exc:
                for name, messages in exc.message_dict.items():
                    errors.setdefault(name, messages)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs
