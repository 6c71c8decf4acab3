"""Non-API endpoints of this sub-app (mounted under / by config/urls.py): the signed,
expiring download link of an export job's file."""

from django.urls import path

from payments.reports import views

urlpatterns: list = [
    path("reports/download/<str:token>/", views.download, name="reports-download"),
]
