"""REST API v1 routes of this sub-app (mounted under /api/v1/ by config/urls.py)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from payments.reports.api import views

router = SimpleRouter(use_regex_path=False)  # path converters: the viewsets' `lookup_value_converter = "uuid"`
router.register("reports/saved", views.SavedReportViewSet, basename="report-saved")
router.register("reports/jobs", views.ExportJobViewSet, basename="report-job")

urlpatterns: list = [
    path("reports/payments", views.PaymentsReportView.as_view(), name="report-payments"),
    path("reports/daily-summary", views.DailySummaryView.as_view(), name="report-daily-summary"),
    path("reports/payouts", views.PayoutsReportView.as_view(), name="report-payouts"),
    path("reports/exceptions", views.ExceptionsReportView.as_view(), name="report-exceptions"),
    *router.urls,
]
