"""Reports over REST (scope `reports:read`): the payments export, the daily summary, the
payout and exceptions reports, saved reports and export jobs.

`format` here names the report's format (csv, xlsx, json), not DRF's renderer switch;
errors are always the JSON envelope. A report larger than PAYDESK_REPORTS_SYNC_MAX_ROWS
rows (or asked with `mode=job`) answers 202 with an export job: poll it, then follow its
`download_url` (signed, expiring).
"""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from payments.reports import selectors, services
from payments.reports.api.serializers import ExportJobSerializer, SavedReportSerializer
from payments.reports.exports import COLUMN_KEYS
from payments.reports.filters import FILTER_NAMES
from payments.reports.http import file_response
from payments.reports.models import ExportJob, Kind, SavedReport
from payments.reports.specs import build_spec, saved_report_params
from tenants.auth import request_actor, request_tenant


class ReportNegotiation(BaseContentNegotiation):
    """`?format=` is a report parameter here; everything that is not a file is JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _param(name: str, description: str, enum=None) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.QUERY, description=description, enum=enum)


COMMON = [
    _param(
        "period",
        "A range of local days (tenant time zone): yesterday, last_7_days and last_30_days (each ending "
        "today, today included), month_to_date, previous_month. The daily summary without dates or "
        "period: last_30_days.",
    ),
    _param("mode", "`job`: always answer with an export job.", ["job"]),
    _param("bom", "CSV: start with a UTF-8 byte order mark (Excel on Windows).", ["true", "false"]),
]
SESSION_FILTERS = [
    _param(
        name, "Local day (tenant time zone), inclusive." if name.startswith("date_") else "As in the pay-session API."
    )
    for name in FILTER_NAMES
]
FILE_RESPONSES = {
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="The report (CSV or XLSX)."),
    (200, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"): OpenApiResponse(
        OpenApiTypes.BINARY, description="The report (CSV or XLSX)."
    ),
    202: OpenApiResponse(ExportJobSerializer, description="Too large to answer now: an export job."),
}


def respond(output: services.Output, request):
    if output.job is not None:
        location = reverse("v1:report-job-detail", kwargs={"id": output.job.uuid})
        data = ExportJobSerializer(output.job).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": location})
    if output.data is not None:
        return Response(output.data)
    return file_response(output)


class ReportView(APIView):
    scope_area = "reports"
    content_negotiation_class = ReportNegotiation
    kind = ""

    def get(self, request):
        tenant = request_tenant(request)
        params = request.query_params.copy()
        as_job = params.pop("mode", [""])[-1] == "job"
        spec = build_spec(kind=self.kind, params=params, tenant=tenant)
        return respond(
            services.report_run(tenant=tenant, spec=spec, actor=request_actor(request), as_job=as_job), request
        )


class PaymentsReportView(ReportView):
    kind = Kind.PAYMENTS

    @extend_schema(
        parameters=[
            _param("format", "csv (default) or xlsx.", ["csv", "xlsx"]),
            _param("columns", "Comma-separated, in the order wanted; default: all of " + ", ".join(COLUMN_KEYS)),
            *COMMON,
            *SESSION_FILTERS,
        ],
        responses=FILE_RESPONSES,
    )
    def get(self, request):
        """Every pay session with its Stripe fee, net, refunds, dispute and payout; one row each."""
        return super().get(request)


class DailySummaryView(ReportView):
    kind = Kind.DAILY_SUMMARY

    @extend_schema(
        parameters=[
            _param("format", "json (default), csv or xlsx.", ["json", "csv", "xlsx"]),
            *COMMON,
            *SESSION_FILTERS,
        ],
        responses={200: OpenApiTypes.OBJECT, **FILE_RESPONSES},
    )
    def get(self, request):
        """Per local day, connector and currency: count, gross, refunds, fees, net, success rate,
        failures by reason (default range: the last 30 days)."""
        return super().get(request)


class PayoutsReportView(ReportView):
    kind = Kind.PAYOUTS

    @extend_schema(
        parameters=[
            _param(
                "format",
                "json (default: one summary per payout), csv or xlsx (one row per transaction).",
                ["json", "csv", "xlsx"],
            ),
            _param("connector", "Connector unique name."),
            _param("date_from", "First payout date."),
            _param("date_to", "Last payout date, inclusive."),
            *COMMON,
        ],
        responses={200: OpenApiTypes.OBJECT, **FILE_RESPONSES},
    )
    def get(self, request):
        """Which payments make up each payout, with fees, and whether the payout equals the sum of its rows."""
        return super().get(request)


class ExceptionsReportView(ReportView):
    kind = Kind.EXCEPTIONS

    @extend_schema(
        parameters=[
            _param("format", "csv (default), xlsx or json.", ["csv", "xlsx", "json"]),
            *[
                _param(n, "As in the reconciliation items API.")
                for n in ("status", "reason", "connector", "environment", "opened_after", "opened_before")
            ],
            *COMMON,
        ],
        responses={200: OpenApiTypes.OBJECT, **FILE_RESPONSES},
    )
    def get(self, request):
        """The reconciliation exceptions queue as a report."""
        return super().get(request)


class SavedReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The tenant's saved report definitions (managed in the admin), and running one."""

    serializer_class = SavedReportSerializer
    lookup_url_kwarg = "id"
    lookup_value_converter = "uuid"
    scope_area = "reports"
    content_negotiation_class = ReportNegotiation

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return SavedReport.objects.none()
        return selectors.saved_report_list(tenant=request_tenant(self.request))

    def get_object(self):
        return selectors.saved_report_get(tenant=request_tenant(self.request), uuid=self.kwargs["id"])

    @extend_schema(
        parameters=[_param("format", "Another format than the saved one."), COMMON[1]],
        responses={200: OpenApiTypes.OBJECT, **FILE_RESPONSES},  # JSON for the kinds that have it
    )
    @action(detail=True, methods=["get"])
    def run(self, request, id=None):
        """Run the saved report now (its period resolved today), or as an export job when large."""
        saved = self.get_object()
        tenant = request_tenant(request)
        params = saved_report_params(saved)
        if request.query_params.get("format"):
            params["format"] = request.query_params["format"]
        spec = build_spec(kind=saved.kind, params=params, tenant=tenant)
        output = services.report_run(
            tenant=tenant,
            spec=spec,
            actor=request_actor(request),
            saved_report=saved,
            as_job=request.query_params.get("mode") == "job",
        )
        return respond(output, request)


class ExportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Export jobs: status, progress, and a signed download link that expires."""

    serializer_class = ExportJobSerializer
    lookup_url_kwarg = "id"
    lookup_value_converter = "uuid"
    scope_area = "reports"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ExportJob.objects.none()
        return selectors.export_job_list(tenant=request_tenant(self.request))

    def get_object(self):
        return selectors.export_job_get(tenant=request_tenant(self.request), uuid=self.kwargs["id"])
