"""Filters of the exceptions queue: the API's, and the exceptions report's."""

import django_filters

from config.filters import IsoDateTimeFilter
from connectors.models import ConnectorInstance
from payments.reconciliation.models import ReconciliationItem


class ReconciliationItemFilter(django_filters.FilterSet):
    connector = django_filters.CharFilter(field_name="connector__unique_name")
    environment = django_filters.ChoiceFilter(
        field_name="connector__environment", choices=ConnectorInstance.Environment.choices
    )
    reason = django_filters.MultipleChoiceFilter(choices=ReconciliationItem.REASONS)
    status = django_filters.ChoiceFilter(choices=[("open", "open"), ("resolved", "resolved")], method="filter_status")
    session = django_filters.UUIDFilter(field_name="session__uuid")
    opened_after = IsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = IsoDateTimeFilter(field_name="opened_at", lookup_expr="lt")

    class Meta:
        model = ReconciliationItem
        fields = ["connector", "environment", "reason", "status", "session", "stripe_object_id"]

    def filter_status(self, queryset, name, value):
        return queryset.filter(resolved_at__isnull=value == "open")
