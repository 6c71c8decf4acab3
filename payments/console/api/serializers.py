from rest_framework import serializers

from payments.sessions.api.serializers import PaySessionCreateSerializer, PaySessionSerializer
from payments.sessions.models import PaySession

# The pay-session serializer's names for the prefill fields of /console/.
_SESSION_NAMES = {"amount": "charge_amount", "reference": "description"}


class ConsoleLinkCreateSerializer(serializers.Serializer):
    """Either an existing session (`session`) or the fields of a new one: the same prefill
    fields the console's new-payment page takes (`call_sid`, `amount`, `currency`,
    `connector`, `reference`), checked as POST /pay-sessions/ checks them."""

    session = serializers.UUIDField(required=False, help_text="An open agent session of this tenant.")
    call_sid = serializers.CharField(required=False, max_length=34)
    amount = serializers.CharField(
        required=False, allow_blank=True, max_length=32, help_text='Major units, e.g. "12.50". Omitted or 0: tokenize.'
    )
    currency = serializers.CharField(required=False, max_length=3, help_text="ISO 4217; default: the tenant's.")
    connector = serializers.CharField(required=False, max_length=64, help_text='Default: "Default".')
    reference = serializers.CharField(required=False, allow_blank=True, max_length=200)
    token_type = serializers.ChoiceField(choices=PaySession.TokenType.choices, required=False)
    agent_reference = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="Your name for the agent; kept in the audit log."
    )

    def validate(self, attrs):
        new_fields = [
            name for name in ("call_sid", "amount", "currency", "connector", "reference", "token_type") if name in attrs
        ]
        if "session" in attrs:
            if new_fields:
                raise serializers.ValidationError({name: ["Not with `session`."] for name in new_fields})
            return attrs
        if "call_sid" not in attrs:
            raise serializers.ValidationError({"call_sid": ["Give the call SID of a new session, or `session`."]})
        body = {_SESSION_NAMES.get(name, name): attrs[name] for name in new_fields}
        incoming = PaySessionCreateSerializer(data=body, context=self.context)
        if not incoming.is_valid():
            names = {v: k for k, v in _SESSION_NAMES.items()}
            raise serializers.ValidationError({names.get(k, k): v for k, v in incoming.errors.items()})
        attrs["connector_instance"] = incoming.validated_data["connector_instance"]
        attrs["request"] = incoming.validated_data["request"]
        return attrs


class ConsoleLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Open once, within minutes: the session's console page, no login needed.")
    expires_at = serializers.DateTimeField()
    session = PaySessionSerializer()
