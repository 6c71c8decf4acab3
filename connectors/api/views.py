import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.schema import can_answer
from connectors import selectors, services
from connectors.api.serializers import ConnectorSerializer
from connectors.models import ConnectorInstance
from tenants.auth import request_actor, request_tenant


class ConnectorFilter(django_filters.FilterSet):
    class Meta:
        model = ConnectorInstance
        fields = ["unique_name", "provider", "environment", "mode", "is_active"]


@extend_schema_view(destroy=extend_schema(extensions=can_answer(409)))  # in use by pay sessions
class ConnectorViewSet(viewsets.ModelViewSet):
    """Pay Connector instances, as installed in the tenant's Twilio Console."""

    serializer_class = ConnectorSerializer
    filterset_class = ConnectorFilter
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    lookup_value_converter = "uuid"
    scope_area = "connectors"
    action_scopes = {"verify": "connectors:write"}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no tenant
            return ConnectorInstance.objects.none()
        return selectors.connector_list(tenant=request_tenant(self.request))

    def get_object(self):
        connector = selectors.connector_get(tenant=request_tenant(self.request), uuid=self.kwargs["id"])
        self.check_object_permissions(self.request, connector)
        return connector

    def perform_create(self, serializer):
        serializer.instance = services.connector_create(
            tenant=request_tenant(self.request), actor=request_actor(self.request), **serializer.validated_data
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.connector_update(
            connector=serializer.instance,
            actor=request_actor(self.request),
            stripe_secret_key=data.pop("stripe_secret_key", None),
            stripe_webhook_secret=data.pop("stripe_webhook_secret", None),
            **{k: v for k, v in data.items() if k != "provider"},
        )

    def perform_destroy(self, instance):
        services.connector_delete(connector=instance, actor=request_actor(self.request))

    @extend_schema(request=None, responses=ConnectorSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request, id=None):
        """Call Stripe with the stored key and record the outcome."""
        connector = services.connector_verify(connector=self.get_object(), actor=request_actor(request))
        return Response(ConnectorSerializer(connector).data, status=status.HTTP_200_OK)
