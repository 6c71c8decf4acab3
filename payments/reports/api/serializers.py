from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from payments.reports import services
from payments.reports.models import ExportJob, SavedReport


class SavedReportSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)

    class Meta:
        model = SavedReport
        fields = ["id", "name", "kind", "format", "period", "filters", "columns", "bom", "created_at", "updated_at"]
        read_only_fields = fields


class ExportJobSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    saved_report = serializers.SerializerMethodField()
    filters = serializers.SerializerMethodField()
    rows_done = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "kind",
            "format",
            "status",
            "saved_report",
            "filters",
            "rows_total",
            "rows_done",
            "progress",
            "file_size",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "expires_at",
            "download_url",
        ]
        read_only_fields = fields

    def get_saved_report(self, obj) -> str | None:
        return str(obj.saved_report.uuid) if obj.saved_report_id else None

    @extend_schema_field({"type": "object", "additionalProperties": True})
    def get_filters(self, obj) -> dict:
        return obj.spec.get("filters", {})

    def get_rows_done(self, obj) -> int:
        return services.export_job_rows_done(obj)

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_progress(self, obj) -> float | None:
        """0 to 1 while it runs (null until the rows are counted), 1 when done."""
        if obj.status == ExportJob.Status.SUCCEEDED:
            return 1.0
        if not obj.rows_total:
            return None
        return round(min(self.get_rows_done(obj) / obj.rows_total, 1.0), 4)

    def get_download_url(self, obj) -> str | None:
        """A signed link, valid for PAYDESK_REPORTS_LINK_MAX_AGE and while the file is kept."""
        if obj.status != ExportJob.Status.SUCCEEDED:
            return None
        return services.download_url(obj)
