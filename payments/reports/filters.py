"""The filters reports accept: the pay-session API's own (PaySessionFilter), plus local
days in the tenant's time zone and a few columns finance filters on."""

import zoneinfo
from datetime import date, datetime, time, timedelta

import django_filters

from config.filters import DateFilter
from connectors.models import ConnectorInstance
from payments.sessions.filters import PaySessionFilter
from tenants.models import Tenant


def local_midnight(day: date, tenant: Tenant) -> datetime:
    """The instant a local day starts in the tenant's time zone (DST-aware)."""
    return datetime.combine(day, time.min, tzinfo=zoneinfo.ZoneInfo(tenant.time_zone))


class ReportFilter(PaySessionFilter):
    """PaySessionFilter (status, connector, call_sid, channel, payment_sid, created_after,
    created_before) plus `date_from`/`date_to`: local days, inclusive, in the tenant's time
    zone, so that a payment at 23:30 local time belongs to that local day."""

    environment = django_filters.ChoiceFilter(
        field_name="connector__environment", choices=ConnectorInstance.Environment.choices
    )
    result = django_filters.CharFilter()
    currency = django_filters.CharFilter(method="filter_currency")
    date_from = DateFilter(method="filter_date_from", help_text="First local day (tenant time zone).")
    date_to = DateFilter(method="filter_date_to", help_text="Last local day, inclusive.")

    class Meta(PaySessionFilter.Meta):
        fields = [*PaySessionFilter.Meta.fields, "environment", "result", "currency", "date_from", "date_to"]

    def __init__(self, data=None, queryset=None, *, tenant: Tenant, **kwargs):
        self.tenant = tenant
        super().__init__(data, queryset, **kwargs)

    def filter_currency(self, queryset, name, value):
        return queryset.filter(currency=value.upper())

    def filter_date_from(self, queryset, name, value):
        return queryset.filter(created_at__gte=local_midnight(value, self.tenant))

    def filter_date_to(self, queryset, name, value):
        return queryset.filter(created_at__lt=local_midnight(value + timedelta(days=1), self.tenant))


# Every name a report's filters may use (what specs.py validates and saved reports store).
FILTER_NAMES = tuple(ReportFilter.base_filters)
