from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.schema import can_answer
from payments.sessions import selectors, services
from payments.sessions.api.serializers import (
    CaptureSerializer,
    PayEventSerializer,
    PaySessionCreateSerializer,
    PaySessionSerializer,
)
from payments.sessions.filters import PaySessionFilter
from payments.sessions.models import PaySession
from tenants.auth import request_actor, request_tenant

# Stored keys get a suffix per Twilio request (PayEvent.idempotency_key has 255).
IDEMPOTENCY_KEY_MAX = 200
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
    location=OpenApiParameter.HEADER,
    required=False,
    description="Makes retries safe: the same key and body give the same result; the same key with "
    f"another body is refused (409). At most {IDEMPOTENCY_KEY_MAX} characters: a longer one is refused (400), "
    "never shortened.",
)
# What the provider may answer: its refusals (502), and its unavailability (503, safe to retry).
PROVIDER_ERRORS = (409, 502, 503)


def _idempotency_key(request) -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        # Cut, two keys sharing their first characters would name one request.
        raise serializers.ValidationError(
            {"Idempotency-Key": [f"At most {IDEMPOTENCY_KEY_MAX} characters; this one has {len(key)}."]}
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in key):
        raise serializers.ValidationError({"Idempotency-Key": ["May not contain control characters."]})
    return key or None


class PaySessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Agent-assisted pay sessions (Twilio Payments API) and IVR sessions."""

    serializer_class = PaySessionSerializer
    filterset_class = PaySessionFilter
    lookup_url_kwarg = "id"
    lookup_value_converter = "uuid"
    scope_area = "payments"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PaySession.objects.none()
        return selectors.pay_session_list(tenant=request_tenant(self.request)).select_related(
            "started_by_api_key", "reconciliation"
        )

    def get_object(self):
        return selectors.pay_session_get(tenant=request_tenant(self.request), uuid=self.kwargs["id"])

    @extend_schema(
        request=PaySessionCreateSerializer,
        responses={201: PaySessionSerializer},
        parameters=[IDEMPOTENCY_HEADER],
        extensions=can_answer(*PROVIDER_ERRORS),
    )
    def create(self, request):
        """Start a pay session on a live call (Twilio CreatePayments)."""
        idempotency_key = _idempotency_key(request)
        tenant = request_tenant(request)
        incoming = PaySessionCreateSerializer(data=request.data, context={"tenant": tenant})
        incoming.is_valid(raise_exception=True)
        session, created = services.pay_session_start(
            tenant=tenant,
            connector=incoming.validated_data["connector_instance"],
            request=incoming.validated_data["request"],
            idempotency_key=idempotency_key,
            actor=request_actor(request),
        )
        headers = {} if created else {"Idempotent-Replayed": "true"}
        return Response(PaySessionSerializer(session).data, status=status.HTTP_201_CREATED, headers=headers)

    @extend_schema(
        request=CaptureSerializer,
        responses=PaySessionSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        extensions=can_answer(*PROVIDER_ERRORS),
    )
    @action(detail=True, methods=["post"])
    def capture(self, request, id=None):
        """Ask the caller for one field; fields may be asked in any order, and again."""
        idempotency_key = _idempotency_key(request)
        session = self.get_object()
        incoming = CaptureSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        session = services.pay_session_capture(
            session=session,
            field=incoming.validated_data["capture"],
            idempotency_key=idempotency_key,
            actor=request_actor(request),
        )
        return Response(PaySessionSerializer(session).data)

    @extend_schema(
        request=None,
        responses=PaySessionSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        extensions=can_answer(*PROVIDER_ERRORS),
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, id=None):
        """Send the captured data to the connector (charge or tokenize). 409 while fields are missing."""
        idempotency_key = _idempotency_key(request)
        session = services.pay_session_complete(
            session=self.get_object(), idempotency_key=idempotency_key, actor=request_actor(request)
        )
        return Response(PaySessionSerializer(session).data)

    @extend_schema(request=None, responses=PaySessionSerializer, extensions=can_answer(*PROVIDER_ERRORS))
    @action(detail=True, methods=["post"])
    def cancel(self, request, id=None):
        session = services.pay_session_cancel(session=self.get_object(), actor=request_actor(request))
        return Response(PaySessionSerializer(session).data)

    @extend_schema(responses=PayEventSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)  # all of them, in order: not paginated
    def events(self, request, id=None):
        """Every callback and every request to Twilio, in the order received (redacted)."""
        session = self.get_object()
        events = selectors.pay_session_events(tenant=request_tenant(request), session=session)
        return Response(PayEventSerializer(events, many=True).data)
