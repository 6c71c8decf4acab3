"""The console's pages (mounted at the root by config/urls.py)."""

from django.urls import path

from payments.console import views

app_name = "console"

urlpatterns = [
    path("console/", views.index, name="index"),
    path("console/login/", views.login, name="login"),
    path("console/logout/", views.logout, name="logout"),
    path("console/sessions/<uuid:uuid>/", views.session_page, name="session"),
    path("console/sessions/<uuid:uuid>/state", views.session_state, name="session-state"),
    *[
        path(
            f"console/sessions/<uuid:uuid>/{action}", views.session_action, {"action": action}, name=f"session-{action}"
        )
        for action in views.ACTIONS
    ],
    path("console/embed/<str:secret>/", views.embed_open, name="embed-open"),
    path("console/embedded/<uuid:uuid>/state", views.embed_state, name="embed-state"),
    *[
        path(f"console/embedded/<uuid:uuid>/{action}", views.embed_action, {"action": action}, name=f"embed-{action}")
        for action in views.ACTIONS
    ],
]
