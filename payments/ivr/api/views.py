from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.errors import ServiceError
from config.schema import can_answer
from payments.ivr import selectors, services
from payments.ivr.api.serializers import (
    PaymentFlowSerializer,
    PaymentReferenceRegisterSerializer,
    PaymentReferenceSerializer,
)
from payments.ivr.models import PaymentFlow
from payments.ivr.studio import NotExportable, studio_flow_definition
from tenants.auth import request_actor, request_tenant


class PaymentFlowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """IVR payment flows (edited in the admin), the amounts partners register for callers
    to pay by reference, and the Studio export."""

    serializer_class = PaymentFlowSerializer
    lookup_url_kwarg = "id"
    lookup_value_converter = "uuid"
    scope_area = "payments"
    filterset_fields = ["is_active", "amount_source", "operation"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PaymentFlow.objects.none()
        return selectors.payment_flow_list(tenant=request_tenant(self.request))

    def get_object(self):
        return selectors.payment_flow_get(tenant=request_tenant(self.request), uuid=self.kwargs["id"])

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, extensions=can_answer(409))
    @action(detail=True, methods=["get"])
    def studio(self, request, id=None):
        """The flow as a Twilio Studio Flow definition (import it in Studio, or POST it to
        Studio's Flows API as `definition`); it reports each result back to Paydesk."""
        try:
            return Response(studio_flow_definition(self.get_object()))
        except NotExportable as exc:
            raise ServiceError(str(exc), code="not_exportable", status=409) from None

    @extend_schema(
        methods=["post"],
        request=PaymentReferenceRegisterSerializer,
        responses={201: PaymentReferenceSerializer, 200: PaymentReferenceSerializer},
        extensions=can_answer(409),  # the reference has been paid
    )
    @extend_schema(methods=["get"], responses=PaymentReferenceSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def references(self, request, id=None):
        """POST registers the amount due for a reference before the call (again, while
        unpaid, changes it: 200); GET lists the flow's references."""
        flow = self.get_object()
        tenant = request_tenant(request)
        if request.method == "GET":
            page = self.paginate_queryset(selectors.payment_reference_list(tenant=tenant, flow=flow))
            return self.get_paginated_response(PaymentReferenceSerializer(page, many=True).data)
        incoming = PaymentReferenceRegisterSerializer(data=request.data, context={"flow": flow})
        incoming.is_valid(raise_exception=True)
        row, created = services.payment_reference_register(
            flow=flow,
            reference=incoming.validated_data["reference"],
            amount_minor=incoming.validated_data["amount"],
            description=incoming.validated_data["description"],
            actor=request_actor(request),
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(PaymentReferenceSerializer(row).data, status=code)

    @extend_schema(responses=PaymentReferenceSerializer)
    @action(detail=True, methods=["get"], url_path="references/<reference:reference>")
    def reference(self, request, id=None, reference=None):
        flow = self.get_object()
        row = selectors.payment_reference_get(tenant=request_tenant(request), flow=flow, reference=reference)
        return Response(PaymentReferenceSerializer(row).data)
