"""In a real browser: an admin enrols an authenticator app, signs in with password and
code, registers a passkey and signs in with it (Chrome's virtual authenticator); the API
docs and the finance dashboard render under the Content-Security-Policy."""

import time

import pytest
from selenium.webdriver.common.virtual_authenticator import VirtualAuthenticatorOptions

from tenants.models import AuditEvent
from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.security.conftest import PASSWORD, totp_code

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mfa_required(settings, live_server):
    settings.PAYDESK_REQUIRE_MFA = True
    # WebAuthn checks the page's origin: the live server's, on localhost.
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]


def sign_in_with_password(page, username: str, password: str = PASSWORD) -> None:
    page.open("/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")


def sign_out(page) -> None:
    page.click("#logout-form button")
    page.wait_for_path("/admin/logout/")


def assert_admin_index(page) -> None:
    page.wait_for_path("/admin/")
    assert "Administration" in page.text("#content h1")


def test_an_admin_enrols_an_app_then_signs_in_with_password_and_code(page, mfa_required):
    UserFactory(username="ada", is_superuser=True)
    sign_in_with_password(page, "ada")

    page.wait_for_path("/account/security/")
    assert "Set one up to continue" in page.text("#content-main")
    page.screenshot("mfa-1-enrol")
    page.click("#setup-totp")
    secret = page.text(".totp-secret").replace(" ", "")
    page.wait_for(".totp-qr svg")
    page.screenshot("mfa-2-totp-setup")
    page.fill("#id_code", totp_code(secret))
    page.click(".security-code-form button[type=submit]")

    codes = [element.text for element in page.driver.find_elements("css selector", ".recovery-codes code")]
    assert len(codes) == 10
    page.screenshot("mfa-3-recovery-codes")
    page.click("a.button.default")
    assert_admin_index(page)

    sign_out(page)
    sign_in_with_password(page, "ada")
    page.wait_for_path("/account/security/verify/")
    page.wait_for("#id_code")
    page.screenshot("mfa-4-totp-prompt")
    page.fill("#id_code", totp_code(secret, at=time.time() + 30))  # the enrolment spent this step's code
    page.click(".security-code-form button[type=submit]")
    assert_admin_index(page)

    assert page.csp_violations() == []
    assert [e for e in page.console() if e["level"] == "SEVERE"] == []
    assert list(AuditEvent.objects.filter(actor="user:ada").values_list("action", flat=True).order_by("id")) == [
        "admin.login",
        "mfa.device_added",
        "mfa.recovery_codes_generated",
        "admin.login",
        "mfa.verified",
    ]


def test_a_passkey_is_registered_and_then_used_as_the_second_factor(page, mfa_required):
    page.driver.add_virtual_authenticator(
        VirtualAuthenticatorOptions(
            protocol="ctap2",
            transport="internal",
            has_resident_key=True,
            has_user_verification=True,
            is_user_verified=True,
        )
    )
    try:
        UserFactory(username="grace", is_superuser=True)
        sign_in_with_password(page, "grace")
        page.wait_for_path("/account/security/")
        page.click("#passkey-register-button")
        # The page's script makes the first recovery codes once the key is registered.
        page.wait_for(".recovery-codes code")
        assert len(page.driver.get_credentials()) == 1
        page.click("a.button.default")
        assert_admin_index(page)

        sign_out(page)
        sign_in_with_password(page, "grace")
        page.wait_for_path("/account/security/verify/")
        page.wait_for("#passkey-verification-button")
        page.screenshot("mfa-5-passkey-prompt")
        page.click("#passkey-verification-button")
        assert_admin_index(page)
    finally:
        page.driver.remove_virtual_authenticator()
    assert page.csp_violations() == []
    events = AuditEvent.objects.filter(actor="user:grace").order_by("id")
    assert [(e.action, e.changes.get("device")) for e in events if e.action.startswith("mfa.")] == [
        ("mfa.device_added", "webauthn"),
        ("mfa.recovery_codes_generated", None),
        ("mfa.verified", "webauthn"),
    ]


def test_the_api_docs_render_under_the_csp_without_violations(page):
    page.open("/api/docs/")
    assert "Paydesk API" in page.text(".swagger-ui .info .title")
    page.wait_until(lambda: len(page.driver.find_elements("css selector", ".opblock")) > 10, "the operations")
    page.click(".opblock-summary")  # expand one operation: Swagger UI's React rendering under the policy
    page.wait_for(".opblock-body")
    page.screenshot("api-docs")
    console = page.console()
    assert [e["message"] for e in console if "Content Security Policy" in e["message"]] == []
    assert [e for e in console if e["level"] == "SEVERE"] == []


def test_the_finance_dashboard_renders_its_charts_under_the_csp(page, settings):
    tenant = TenantFactory(name="Acme", slug="acme")
    owner = UserFactory(username="finn")
    MembershipFactory(user=owner, tenant=tenant)
    sign_in_with_password(page, "finn")
    page.open(f"/admin/reports/financedashboard/?tenant={tenant.uuid}")
    page.wait_for(".finance-dashboard svg.chart")
    width = page.driver.execute_script(
        "return document.querySelector('.finance-dashboard svg.chart').getBoundingClientRect().width"
    )
    assert 300 < width <= 760, "the stylesheet caps the chart width"
    page.screenshot("finance-dashboard")
    assert page.csp_violations() == []


def test_a_locked_sign_in_says_so_and_a_superuser_sees_the_lock(page):
    UserFactory(username="eve")
    for _ in range(10):
        sign_in_with_password(page, "eve", password="not-her-password")
    assert "Sign-in is locked" in page.text(".errornote")
    page.screenshot("lockout-1-locked")
    sign_in_with_password(page, "eve")  # the right password, the eleventh try
    assert "Sign-in is locked" in page.text(".errornote")

    page.driver.delete_all_cookies()
    page.sign_in_as(UserFactory(username="root", is_superuser=True))
    page.open("/admin/security/loginlock/?locked=yes")
    assert "eve" in page.text("#result_list")
    page.screenshot("lockout-2-admin-list")
    assert page.csp_violations() == []
