"""Filters of the pay-session list: the API's, and the base of the reports' own."""

import django_filters

from config.filters import IsoDateTimeFilter
from payments.sessions.models import PaySession


class PaySessionFilter(django_filters.FilterSet):
    connector = django_filters.CharFilter(field_name="connector__unique_name")
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = PaySession
        fields = ["status", "connector", "call_sid", "channel", "payment_sid"]
