from rest_framework import mixins, viewsets

from config.api import CursorPagination
from payments.reconciliation import selectors
from payments.reconciliation.api.serializers import ReconciliationItemSerializer
from payments.reconciliation.filters import ReconciliationItemFilter
from payments.reconciliation.models import ReconciliationItem
from tenants.auth import request_tenant


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
