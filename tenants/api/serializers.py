from rest_framework import serializers

from tenants.models import Tenant


class TenantSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)

    class Meta:
        model = Tenant
        fields = [
            "id",
            "slug",
            "name",
            "status",
            "twilio_account_sid",
            "twilio_auth_token_last4",
            "time_zone",
            "default_currency",
            "created_at",
        ]
        read_only_fields = fields
