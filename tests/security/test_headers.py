"""Response headers: Content-Security-Policy with a nonce on every page, no-store on every
API response and admin page, frame-ancestors overridable per view."""

import re

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import override_settings
from django.urls import include, path

from config.security import allow_framing
from tests.factories import UserFactory


def policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


def nonce_of(response) -> str:
    match = re.search(r"'nonce-([A-Za-z0-9+/=]+)'", policy(response)["script-src"])
    assert match, response["Content-Security-Policy"]
    return match.group(1)


def assert_strict(response):
    directives = policy(response)
    assert directives["script-src"].startswith("script-src 'self' 'nonce-")
    assert directives["style-src"].startswith("style-src 'self' 'nonce-")
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    assert directives["object-src"] == "object-src 'none'"


def inline_blocks_without_the_nonce(html: str, nonce: str) -> list[str]:
    """Inline <script> (not JSON data) and <style> blocks, and style="" attributes, that
    the policy would block."""
    blocked = []
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", html):
        if "src=" in tag or 'type="application/json"' in tag:
            continue
        if f'nonce="{nonce}"' not in tag:
            blocked.append(tag)
    blocked += re.findall(r"<[a-z]+\b[^>]*\sstyle=\"[^\"]*\"", html)
    return blocked


def test_admin_pages_carry_a_strict_csp_with_a_nonce(client, superuser):
    client.force_login(superuser)
    for page in ["/admin/login/", "/admin/", "/admin/tenants/tenant/add/", "/admin/auth/user/"]:
        response = client.get(page)
        assert response.status_code in (200, 302), page
        assert_strict(response)
        if response.status_code == 200:
            assert inline_blocks_without_the_nonce(response.content.decode(), nonce_of(response)) == [], page


def test_each_response_gets_its_own_nonce(client, db):
    first, second = client.get("/admin/login/"), client.get("/admin/login/")
    assert nonce_of(first) != nonce_of(second)


def test_the_finance_dashboard_carries_the_csp_and_no_inline_style(client, world):
    client.force_login(world.acme.owner)
    response = client.get("/admin/reports/financedashboard/", {"tenant": str(world.acme.tenant.uuid)})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html and "reports/dashboard.css" in html
    assert_strict(response)
    assert inline_blocks_without_the_nonce(html, nonce_of(response)) == []
    assert "no-store" in response["Cache-Control"]


def test_the_api_docs_inline_script_and_style_carry_the_request_nonce(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    nonce = nonce_of(response)
    assert f'<script nonce="{nonce}">' in html and f'<style nonce="{nonce}">' in html
    assert inline_blocks_without_the_nonce(html, nonce) == []


def test_the_second_factor_pages_carry_the_csp_and_use_no_inline_code(client, settings, db):
    settings.PAYDESK_REQUIRE_MFA = True
    user = UserFactory(username="dora")
    client.force_login(user)
    for page in ["/account/security/", "/account/security/totp/"]:
        response = client.get(page)
        assert response.status_code == 200, page
        assert_strict(response)
        assert inline_blocks_without_the_nonce(response.content.decode(), nonce_of(response)) == [], page


@pytest.mark.parametrize(
    "method, path, authenticated, status",
    [
        ("get", "/api/v1/tenant/", True, 200),
        ("get", "/api/v1/pay-sessions/", True, 200),
        ("get", "/api/v1/tenant/", False, 401),
        ("post", "/api/v1/pay-sessions/", True, 400),
        ("get", "/api/schema/", False, 200),
        ("get", "/api/docs/", False, 200),
    ],
)
def test_every_api_response_is_no_store(api_for, world, method, path, authenticated, status):
    client = api_for(world.acme.raw_key if authenticated else None)
    response = getattr(client, method)(path, format="json") if method == "post" else client.get(path)
    assert response.status_code == status
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


def test_admin_pages_are_no_store(client, world):
    client.force_login(world.acme.owner)
    for page in ["/admin/", "/admin/payments/paysession/", "/admin/tenants/apikey/"]:
        response = client.get(page)
        assert response.status_code == 200, page
        assert "no-store" in response["Cache-Control"], page


def test_static_files_are_served_above_the_no_store_rule():
    # WhiteNoise answers static files before the later middleware run, so their
    # long-lived caching stays (the test client serves no static files to show it).
    middleware = settings.MIDDLEWARE
    assert middleware.index("whitenoise.middleware.WhiteNoiseMiddleware") < middleware.index(
        "config.security.NoStoreMiddleware"
    )


@allow_framing("https://crm.example.com")
def framed_console(request):
    return HttpResponse("<p>console</p>")


def plain_page(request):
    return HttpResponse("<p>plain</p>")


urlpatterns = [
    path("console-embed/", framed_console),
    path("plain/", plain_page),
    path("", include("config.urls")),
]


@override_settings(ROOT_URLCONF=__name__)
def test_a_view_may_allow_framing_by_named_origins_and_others_stay_unframeable(client, db):
    framed = client.get("/console-embed/")
    assert policy(framed)["frame-ancestors"] == "frame-ancestors https://crm.example.com"
    assert "X-Frame-Options" not in framed
    plain = client.get("/plain/")
    assert policy(plain)["frame-ancestors"] == "frame-ancestors 'none'"
    assert plain["X-Frame-Options"] == "DENY"


def test_allow_framing_needs_an_origin():
    with pytest.raises(ValueError):
        allow_framing()


def test_no_admin_list_add_or_change_page_has_inline_code_the_policy_would_block(client, world, superuser):
    from django.contrib import admin

    client.force_login(superuser)
    checked = 0
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        pages = [f"/admin/{opts.app_label}/{opts.model_name}/"]
        if model_admin.has_add_permission(type("R", (), {"user": superuser})()):
            pages.append(f"/admin/{opts.app_label}/{opts.model_name}/add/")
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            pages.append(f"/admin/{opts.app_label}/{opts.model_name}/{first.pk}/change/")
        for page in pages:
            response = client.get(page)
            if response.status_code != 200:
                continue
            checked += 1
            html = response.content.decode()
            assert inline_blocks_without_the_nonce(html, nonce_of(response)) == [], page
            assert "no-store" in response["Cache-Control"], page
    assert checked > 30
