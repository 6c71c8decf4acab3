from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from config.schema import can_answer
from payments.refunds import selectors, services
from payments.refunds.api.serializers import RefundCreateSerializer, RefundSerializer
from payments.refunds.filters import RefundFilter
from payments.refunds.models import Refund
from payments.sessions.selectors import pay_session_get
from tenants.auth import request_actor, request_tenant
from tenants.models import Scope

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    description="Makes retries safe: the same key and body give the same refund (200); the same key with "
    "another body is refused (409). After a 503, retry with the same key: the refund is made exactly once.",
)


def _idempotency_key(request) -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    return key[:200] or None


class PaySessionRefundViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The refunds of one pay session; POST refunds (part of) it through its connector's Stripe account."""

    serializer_class = RefundSerializer
    pagination_class = None  # a session has a handful
    scope_area = "payments"
    # Refunding sends money back: its own scope, never implied by payments:write.
    action_scopes = {"create": Scope.PAYMENTS_REFUND.value, "list": Scope.PAYMENTS_READ.value}

    def _session(self):
        return pay_session_get(tenant=request_tenant(self.request), uuid=self.kwargs["id"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Refund.objects.none()
        return selectors.session_refunds(tenant=request_tenant(self.request), session=self._session())

    @extend_schema(
        request=RefundCreateSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        extensions=can_answer(402, 409, 502, 503),
        responses={
            201: RefundSerializer,
            200: OpenApiResponse(RefundSerializer, description="A replay of the same Idempotency-Key and body."),
        },
    )
    def create(self, request, id=None):
        """Refund all or part of a succeeded payment. 400 when the amount is above what remains; 409 when the
        session cannot be refunded; 402/502 when Stripe refuses; 503 when Stripe cannot be reached."""
        session = self._session()
        incoming = RefundCreateSerializer(data=request.data, context={"session": session})
        incoming.is_valid(raise_exception=True)
        refund, made = services.refund_create(
            session=session,
            request=incoming.validated_data["request"],
            idempotency_key=_idempotency_key(request),
            actor=request_actor(request),
        )
        headers = {} if made else {"Idempotent-Replayed": "true"}
        return Response(
            RefundSerializer(refund).data,
            status=status.HTTP_201_CREATED if made else status.HTTP_200_OK,
            headers=headers,
        )


class RefundViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every refund of the tenant: made through Paydesk, or in Stripe and seen by reconciliation."""

    serializer_class = RefundSerializer
    filterset_class = RefundFilter
    lookup_url_kwarg = "id"
    lookup_value_converter = "uuid"
    scope_area = "payments"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Refund.objects.none()
        return selectors.refund_list(tenant=request_tenant(self.request))

    def get_object(self):
        return selectors.refund_get(tenant=request_tenant(self.request), uuid=self.kwargs["id"])
