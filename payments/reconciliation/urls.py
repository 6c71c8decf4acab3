"""Endpoints the providers call (mounted under / by config/urls.py)."""

urlpatterns: list = []
