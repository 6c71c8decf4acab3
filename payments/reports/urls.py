"""Non-API endpoints of this sub-app (mounted under / by config/urls.py)."""

urlpatterns: list = []
