"""Filters of the refunds list (GET /api/v1/refunds/)."""

import django_filters

from payments.refunds.models import Refund


class RefundFilter(django_filters.FilterSet):
    connector = django_filters.CharFilter(field_name="connector__unique_name")
    pay_session = django_filters.UUIDFilter(field_name="session__uuid")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Refund
        fields = ["status", "connector", "origin", "reason", "pay_session", "stripe_refund_id"]
