"""Export actions for the pay-sessions admin (ReportsConfig.ready() registers them through
payments.sessions.extensions): export the selected sessions, or everything the
changelist's current filters match, as CSV or XLSX.

An export is one tenant's (its time zone, its totals): a selection spanning tenants is
refused with a message. Only sessions of tenants where the user may see reports count
(owner, admin, finance, viewer). "Matching the filters" turns the changelist's filters
into the report filters, so a large range runs as an export job; a filter that has no
report equivalent (a search) is exported directly if small enough, else refused.
"""

from datetime import datetime, timedelta

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from config.errors import ServiceError
from connectors.models import ConnectorInstance
from payments.reports import services
from payments.reports.admin import REPORT_ROLES
from payments.reports.http import file_response
from payments.reports.models import Format, Kind
from payments.reports.specs import ReportSpec
from tenants.admin_scoping import admin_actor
from tenants.models import Tenant

# Changelist parameter → report filter (PaySessionAdmin's list_filter and date_hierarchy).
_DIRECT = {
    "status__exact": "status",
    "channel__exact": "channel",
    "connector__environment__exact": "environment",
    "result": "result",
    "result__exact": "result",
    "created_at__gte": "created_after",
    "created_at__lt": "created_before",
}
_IGNORED = {"o", "p", "all", "_changelist_filters", "e"}


def changelist_filters(params, tenant: Tenant) -> dict | None:
    """The report filters equivalent to the changelist's, or None if one has none."""
    filters, year, month, day = {}, None, None, None
    for name in params:
        value = params.get(name)
        if name in _IGNORED or value == "":
            continue
        if name in _DIRECT:
            filters[_DIRECT[name]] = value.replace(" ", "T", 1) if name.startswith("created_at") else value
        elif name == "connector" and value.isdigit():
            connector = ConnectorInstance.objects.filter(pk=int(value), tenant=tenant).first()
            if connector is None:
                return None
            filters["connector"] = connector.unique_name
        elif name == "created_at__year" and value.isdigit():
            year = int(value)
        elif name == "created_at__month" and value.isdigit():
            month = int(value)
        elif name == "created_at__day" and value.isdigit():
            day = int(value)
        else:
            return None  # a search, or a filter reports do not have
    if year:
        start = datetime(year, month or 1, day or 1, tzinfo=timezone.get_current_timezone())
        if day:
            end = start + timedelta(days=1)
        elif month:
            end = start.replace(year=year + (month == 12), month=month % 12 + 1)
        else:
            end = start.replace(year=year + 1)
        filters["created_after"], filters["created_before"] = start.isoformat(), end.isoformat()
    return filters


def _export(modeladmin, request, queryset, *, fmt: str, matching: bool):
    try:
        return _export_or_refuse(modeladmin, request, queryset, fmt=fmt, matching=matching)
    except ServiceError as error:
        modeladmin.message_user(request, error.message, messages.ERROR)
        return None


def _export_or_refuse(modeladmin, request, queryset, *, fmt: str, matching: bool):
    if matching:
        changelist = modeladmin.get_changelist_instance(request)
        queryset = changelist.get_queryset(request)
    reportable = modeladmin.scope_queryset(request, queryset, roles=REPORT_ROLES)
    tenants = list(reportable.order_by().values_list("tenant_id", flat=True).distinct()[:2])
    if len(tenants) != 1:
        if len(tenants) > 1:
            text = "An export is one tenant's: filter by one tenant first."
        elif queryset.exists():
            text = "Exports are for owners, admins, finance and viewers of the tenant."
        else:
            text = "Nothing to export."
        modeladmin.message_user(request, text, messages.WARNING)
        return None
    queryset = reportable
    tenant = Tenant.objects.get(pk=tenants[0])
    actor = admin_actor(request)
    filters = changelist_filters(request.GET, tenant) if matching else None
    if filters is None:
        limit = services.sync_max_rows(fmt)
        ids = list(queryset.values_list("pk", flat=True)[: limit + 1])
        if len(ids) > limit:
            modeladmin.message_user(
                request,
                f"More than {limit} sessions: use the list filters (not a search or a selection) "
                "so that the export can run as a job.",
                messages.WARNING,
            )
            return None
        spec = ReportSpec(Kind.PAYMENTS, fmt)
        return file_response(services.report_run(tenant=tenant, spec=spec, actor=actor, session_ids=ids))
    spec = ReportSpec(Kind.PAYMENTS, fmt, filters)
    output = services.report_run(tenant=tenant, spec=spec, actor=actor)
    if output.job is not None:
        url = reverse("admin:reports_exportjob_change", args=[output.job.pk])
        modeladmin.message_user(
            request,
            format_html(
                'Large export: it runs as an <a href="{}">export job</a>; the download link appears there.', url
            ),
            messages.INFO,
        )
        return None
    return file_response(output)


@admin.action(description="Export selected sessions (CSV)", permissions=["view"])
def export_selected_csv(modeladmin, request, queryset):
    return _export(modeladmin, request, queryset, fmt=Format.CSV, matching=False)


@admin.action(description="Export selected sessions (XLSX)", permissions=["view"])
def export_selected_xlsx(modeladmin, request, queryset):
    return _export(modeladmin, request, queryset, fmt=Format.XLSX, matching=False)


@admin.action(description="Export everything matching the current filters (CSV)", permissions=["view"])
def export_matching_csv(modeladmin, request, queryset):
    return _export(modeladmin, request, queryset, fmt=Format.CSV, matching=True)


@admin.action(description="Export everything matching the current filters (XLSX)", permissions=["view"])
def export_matching_xlsx(modeladmin, request, queryset):
    return _export(modeladmin, request, queryset, fmt=Format.XLSX, matching=True)


# Registered on the pay-session list by ReportsConfig.ready().
export_actions = [export_selected_csv, export_selected_xlsx, export_matching_csv, export_matching_xlsx]
