"""The reports admin: saved reports, schedules, export jobs, deliveries, and the finance
dashboard. Scoped to the user's tenants (tenants.admin_scoping): reports are seen by
owners, admins, finance and viewers, and written (saved reports, schedules) by owners,
admins and finance. Agents run calls; finance reports are not theirs.
"""

from django import forms
from django.contrib import admin
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from payments.reports import delivery, services
from payments.reports.dashboard import dashboard_context
from payments.reports.exports import COLUMN_KEYS, COLUMNS
from payments.reports.models import ExportJob, FinanceDashboard, ReportDelivery, ReportSchedule, SavedReport
from payments.reports.specs import spec_for_saved
from tenants.admin_lists import ScalableListMixin, TenantListFilter
from tenants.admin_scoping import (
    ReadOnlyAdminMixin,
    ServiceFormAdminMixin,
    ServiceModelForm,
    TenantScopedAdminMixin,
    admin_actor,
)
from tenants.models import Role, Tenant

REPORT_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.FINANCE, Role.VIEWER})
REPORT_WRITE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.FINANCE})


class ReportsAdminMixin(TenantScopedAdminMixin):
    view_roles = REPORT_ROLES
    write_roles = REPORT_WRITE_ROLES

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request), roles=self.view_roles)

    def has_module_permission(self, request):
        return self._allowed(request, None, self.view_roles)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj, self.view_roles)


# --- Saved reports ----------------------------------------------------------------------


class SavedReportForm(ServiceModelForm):
    columns = forms.MultipleChoiceField(
        choices=[(c.key, c.header) for c in COLUMNS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Payments only. None ticked: every column.",
    )

    class Meta:
        model = SavedReport
        fields = ["tenant", "name", "kind", "format", "period", "filters", "columns", "bom"]

    def save_via_service(self, data):
        report = self.instance
        for name in self.Meta.fields:
            setattr(report, name, data.get(name))
        report.filters = data.get("filters") or {}
        report.columns = [k for k in COLUMN_KEYS if k in (data.get("columns") or [])]
        return services.saved_report_save(report=report, actor=self.actor)


@admin.register(SavedReport)
class SavedReportAdmin(ReportsAdminMixin, ServiceFormAdminMixin, admin.ModelAdmin):
    form = SavedReportForm
    list_display = ["name", "tenant", "kind", "format", "period", "updated_at"]
    list_filter = ["kind", "format", ("tenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name"]
    actions = ["run_as_job"]

    def has_run_permission(self, request, obj=None):
        return self._allowed(request, obj, self.view_roles)

    @admin.action(description="Run now as export jobs", permissions=["run"])
    def run_as_job(self, request, queryset):
        for saved in self.scope_queryset(request, queryset, roles=self.view_roles).select_related("tenant"):
            job, _ = services.export_job_request(
                tenant=saved.tenant, spec=spec_for_saved(saved), actor=admin_actor(request), saved_report=saved
            )
            url = reverse("admin:reports_exportjob_change", args=[job.pk])
            self.message_user(request, format_html('{}: <a href="{}">export job</a> queued.', saved.name, url))


# --- Schedules and deliveries -----------------------------------------------------------


class ReportScheduleForm(ServiceModelForm):
    class Meta:
        model = ReportSchedule
        fields = ["tenant", "saved_report", "name", "recipients", "cadence", "local_time", "weekday", "enabled"]
        widgets = {"recipients": forms.Textarea(attrs={"rows": 2})}

    def save_via_service(self, data):
        schedule = self.instance
        for name in self.Meta.fields:
            setattr(schedule, name, data.get(name))
        return delivery.report_schedule_save(schedule=schedule, actor=self.actor)


@admin.register(ReportSchedule)
class ReportScheduleAdmin(ReportsAdminMixin, ServiceFormAdminMixin, admin.ModelAdmin):
    form = ReportScheduleForm
    list_display = ["name", "tenant", "saved_report", "cadence", "local_time", "enabled", "next_run_at", "last_run_at"]
    list_filter = ["cadence", "enabled", ("tenant", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["next_run_at", "last_run_at"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "saved_report" and not request.user.is_superuser:
            kwargs["queryset"] = SavedReport.objects.filter(tenant_id__in=self._writable_tenants(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _writable_tenants(self, request):
        from tenants.admin_scoping import tenant_ids

        return tenant_ids(request, self.write_roles)


@admin.register(ReportDelivery)
class ReportDeliveryAdmin(ReadOnlyAdminMixin, ScalableListMixin, ReportsAdminMixin, admin.ModelAdmin):
    list_display = ["schedule", "tenant", "due_at", "status", "attempts", "sent_at", "error"]
    list_filter = ["status", TenantListFilter]
    list_select_related = ["schedule", "tenant"]
    sortable_by = ["due_at"]


# --- Export jobs ------------------------------------------------------------------------


@admin.register(ExportJob)
class ExportJobAdmin(ReadOnlyAdminMixin, ScalableListMixin, ReportsAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "tenant", "kind", "format", "status", "progress_display", "rows_done", "download"]
    list_filter = ["status", "kind", TenantListFilter]
    list_select_related = ["tenant"]
    sortable_by = ["created_at"]
    fields = [
        "uuid",
        "tenant",
        "saved_report",
        "kind",
        "format",
        "spec",
        "status",
        "rows_total",
        "rows_done",
        "file_size",
        "error",
        "requested_by_label",
        "created_at",
        "started_at",
        "finished_at",
        "expires_at",
        "download",
    ]
    readonly_fields = fields

    @admin.display(description="Progress")
    def progress_display(self, obj):
        if obj.status == ExportJob.Status.SUCCEEDED:
            return "100%"
        if not obj.rows_total:
            return "—"
        return f"{min(services.export_job_rows_done(obj) / obj.rows_total, 1):.0%}"

    @admin.display(description="Download")
    def download(self, obj):
        if obj.status != ExportJob.Status.SUCCEEDED:
            return "—"
        return format_html('<a href="{}">{}</a>', services.download_path(obj), obj.format.upper())


# --- The finance dashboard --------------------------------------------------------------


@admin.register(FinanceDashboard)
class FinanceDashboardAdmin(ReadOnlyAdminMixin, ReportsAdminMixin, admin.ModelAdmin):
    tenant_field = "pk"
    day_choices = (7, 30, 90)

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        tenants = list(self.get_queryset(request).order_by("name"))
        wanted = request.GET.get("tenant")
        tenant = None
        if wanted:
            tenant = next((t for t in tenants if str(t.uuid) == wanted), None)
            if tenant is None:
                raise Http404("No such tenant.")  # another tenant's dashboard does not exist here
        elif len(tenants) == 1:
            tenant = tenants[0]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Finance dashboard · {tenant.name}" if tenant else "Finance dashboards",
            "tenants": tenants,
            "day_choices": self.day_choices,
        }
        if tenant is not None:
            days = int(request.GET["days"]) if request.GET.get("days", "").isdigit() else 30
            days = min(max(days, 1), 366)
            context.update(
                dashboard_context(
                    tenant=Tenant.objects.get(pk=tenant.pk),
                    days=days,
                    currency=request.GET.get("currency", "").upper(),
                )
            )
        return TemplateResponse(request, "admin/reports/dashboard.html", context)

    def get_urls(self):
        # Only the dashboard: no change, history or delete pages for this proxy.
        from django.urls import path

        view = self.admin_site.admin_view(self.changelist_view)
        return [path("", view, name="reports_financedashboard_changelist")]
