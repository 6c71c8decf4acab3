"""Routes of the second-factor pages (mounted under / by config/urls.py)."""

from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import views as webauthn_views

from tenants.security import views, webauthn

security_patterns = [
    path("", views.overview, name="overview"),
    path("verify/", views.verify, name="verify"),
    path("totp/", views.totp, name="totp"),
    path("recovery-codes/", views.recovery_codes, name="recovery_codes"),
]

# django-otp-webauthn's own routes and names, with the audited views in place.
webauthn_patterns = [
    path(
        "registration/begin/",
        webauthn_views.BeginCredentialRegistrationView.as_view(),
        name="credential-registration-begin",
    ),
    path(
        "registration/complete/",
        webauthn.CompleteRegistrationView.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        webauthn_views.BeginCredentialAuthenticationView.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        webauthn.CompleteAuthenticationView.as_view(),
        name="credential-authentication-complete",
    ),
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]), name="js-i18n-catalog"),
]

urlpatterns = [
    path("account/security/", include((security_patterns, "security"))),
    path("account/security/webauthn/", include((webauthn_patterns, "otp_webauthn"))),
]
