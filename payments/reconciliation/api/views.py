import django_filters
from rest_framework import mixins, viewsets

from config.api import CursorPagination
from connectors.models import ConnectorInstance
from payments.reconciliation import selectors
from payments.reconciliation.api.serializers import ReconciliationItemSerializer
from payments.reconciliation.models import ReconciliationItem
from tenants.auth import request_tenant


class ReconciliationItemFilter(django_filters.FilterSet):
    connector = django_filters.CharFilter(field_name="connector__unique_name")
    environment = django_filters.ChoiceFilter(
        field_name="connector__environment", choices=ConnectorInstance.Environment.choices
    )
    reason = django_filters.MultipleChoiceFilter(choices=ReconciliationItem.REASONS)
    status = django_filters.ChoiceFilter(choices=[("open", "open"), ("resolved", "resolved")], method="filter_status")
    session = django_filters.UUIDFilter(field_name="session__uuid")
    opened_after = django_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = django_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="lt")

    class Meta:
        model = ReconciliationItem
        fields = ["connector", "environment", "reason", "status", "session", "stripe_object_id"]

    def filter_status(self, queryset, name, value):
        return queryset.filter(resolved_at__isnull=value == "open")


class ItemPagination(CursorPagination):
    ordering = ("-opened_at", "-id")


class ReconciliationItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The exceptions queue: every difference between Paydesk and the tenant's Stripe accounts."""

    serializer_class = ReconciliationItemSerializer
    filterset_class = ReconciliationItemFilter
    pagination_class = ItemPagination
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    lookup_value_converter = "uuid"
    scope_area = "reconciliation"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ReconciliationItem.objects.none()
        return selectors.item_list(tenant=request_tenant(self.request))

    def get_object(self):
        return selectors.item_get(tenant=request_tenant(self.request), uuid=self.kwargs["id"])
