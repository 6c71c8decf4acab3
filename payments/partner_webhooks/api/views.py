import uuid

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api import CursorPagination
from payments.outbox import catalogue
from payments.outbox import selectors as outbox_selectors
from payments.outbox.models import Event
from payments.partner_webhooks import selectors, services
from payments.partner_webhooks.api.serializers import (
    EventSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointSerializer,
    WebhookEndpointWithSecretSerializer,
)
from payments.partner_webhooks.models import WebhookDelivery, WebhookEndpoint
from tenants.auth import request_actor, request_tenant


def _key_scopes(request) -> list[str]:
    return list(request.auth.scopes)


class WebhookEndpointViewSet(viewsets.ModelViewSet):
    """Where Paydesk sends the tenant's events, signed (Standard Webhooks; docs/partner-webhooks.md)."""

    serializer_class = WebhookEndpointSerializer
    lookup_url_kwarg = "id"
    lookup_value_converter = "uuid"
    scope_area = "webhooks"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return selectors.endpoint_list(tenant=request_tenant(self.request))

    def get_object(self):
        return selectors.endpoint_get(tenant=request_tenant(self.request), uuid=self.kwargs["id"])

    @extend_schema(responses={201: WebhookEndpointWithSecretSerializer})
    def create(self, request):
        """Create an endpoint. The answer carries its signing secret, shown this once."""
        incoming = WebhookEndpointSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_endpoint_create(
            tenant=request_tenant(request),
            actor=request_actor(request),
            scopes=_key_scopes(request),
            **incoming.validated_data,
        )
        body = WebhookEndpointWithSecretSerializer(endpoint, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.webhook_endpoint_update(
            endpoint=serializer.instance,
            actor=request_actor(self.request),
            scopes=_key_scopes(self.request),
            **serializer.validated_data,
        )

    def perform_destroy(self, instance):
        services.webhook_endpoint_delete(endpoint=instance, actor=request_actor(self.request))

    @extend_schema(request=None, responses=WebhookEndpointWithSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, id=None):
        """A new signing secret, shown this once; the old one keeps signing beside it for 24 hours."""
        endpoint, secret = services.webhook_endpoint_rotate_secret(
            endpoint=self.get_object(), actor=request_actor(request)
        )
        return Response(WebhookEndpointWithSecretSerializer(endpoint, context={"secret": secret}).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, id=None):
        """Send a `ping` event to this endpoint; follow it in the delivery log."""
        delivery = services.webhook_endpoint_send_test(endpoint=self.get_object(), actor=request_actor(request))
        delivery.refresh_from_db()
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses=WebhookDeliverySerializer(many=True),
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=WebhookDelivery.Status.values),
            OpenApiParameter("page_size", OpenApiTypes.INT),
        ],
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request, id=None):
        """The delivery log, newest first: status, attempts, the last answer, the next attempt."""
        deliveries = selectors.delivery_list(tenant=request_tenant(request), endpoint=self.get_object())
        wanted = request.query_params.get("status")
        if wanted:
            deliveries = deliveries.filter(status=wanted)
        paginator = CursorPagination()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses={202: WebhookDeliverySerializer},
        parameters=[OpenApiParameter("delivery_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
    )
    @action(detail=True, methods=["post"], url_path="deliveries/<uuid:delivery_id>/retry")
    def retry(self, request, id=None, delivery_id=None):
        """Send a finished delivery again."""
        delivery = selectors.delivery_get(tenant=request_tenant(request), endpoint=self.get_object(), uuid=delivery_id)
        delivery = services.webhook_delivery_retry(delivery=delivery, actor=request_actor(request))
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The tenant's events of the last 30 days, newest first: the types this key may read."""

    serializer_class = EventSerializer
    lookup_url_kwarg = "id"
    lookup_value_regex = r"evt_[0-9a-f]{32}"
    scope_area = "webhooks"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Event.objects.none()
        types = [*catalogue.readable_types(_key_scopes(self.request)), catalogue.PING]
        wanted = self.request.query_params.get("type")
        if wanted:
            types = [t for t in types if t == wanted]
        return outbox_selectors.event_list(tenant=request_tenant(self.request), types=types)

    def get_object(self):
        try:
            event_uuid = uuid.UUID(self.kwargs["id"].removeprefix("evt_"))
        except ValueError:
            raise Http404("No such event.") from None
        event = self.get_queryset().filter(uuid=event_uuid).first()
        if event is None:
            raise Http404("No such event.")
        return event

    @extend_schema(
        parameters=[OpenApiParameter("type", OpenApiTypes.STR, enum=[*catalogue.SUBSCRIBABLE, catalogue.PING])]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)
