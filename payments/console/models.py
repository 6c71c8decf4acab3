import uuid

from django.core.exceptions import ValidationError
from django.db import models

from payments.sessions.models import PaySession
from tenants.models import ApiKey, Tenant


def parse_origins(text: str) -> list[str]:
    """One origin per line (blank lines ignored), as CSP's frame-ancestors takes them."""
    return [line.strip().rstrip("/") for line in (text or "").splitlines() if line.strip()]


def validate_frame_origins(text: str) -> None:
    from urllib.parse import urlsplit

    bad = []
    for origin in parse_origins(text):
        parts = urlsplit(origin)
        try:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            bad.append(origin)
            continue
        # An origin only: a scheme, a host (its first label may be "*", as CSP allows, for
        # software that gives each customer a subdomain) and maybe a port; no path, query or
        # user. CSP would take more, but a tenant's list should say exactly who may frame.
        host = parts.hostname or ""
        if (
            parts.scheme not in ("https", "http")
            or not host
            or "*" in host.removeprefix("*.")
            or (host.startswith("*.") and "." not in host[2:])
            or parts.path
            or parts.query
            or parts.fragment
            or parts.username
            or any(c in origin for c in " ;,'\"")
        ):
            bad.append(origin)
    if bad:
        raise ValidationError(
            f"Not an origin: {', '.join(bad)}. Give one per line, like https://crm.example.com "
            "(scheme, host, optional port; no path)."
        )


class ConsoleSettings(models.Model):
    """A tenant's choices for the agent console. No row means the defaults below."""

    tenant = models.OneToOneField(Tenant, on_delete=models.PROTECT, related_name="console_settings")
    frame_origins = models.TextField(
        blank=True,
        validators=[validate_frame_origins],
        help_text="Origins allowed to show the embedded console in a frame, one per line, e.g. "
        "https://crm.example.com or https://*.crm.example.com. Empty: no site may frame it.",
    )
    allow_tokenize = models.BooleanField(
        default=True, help_text="Agents may save a card (tokenize) instead of charging it."
    )
    allow_ach = models.BooleanField(default=False, help_text="Agents may take a bank account (ACH debit).")
    allow_skip_security_code = models.BooleanField(
        default=False, help_text="Agents may choose not to ask for the security code."
    )
    allow_skip_postal_code = models.BooleanField(
        default=False, help_text="Agents may choose not to ask for the postal code."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "console settings"
        verbose_name_plural = "console settings"

    def __str__(self) -> str:
        return f"Console settings of {self.tenant}"

    @property
    def frame_origin_list(self) -> list[str]:
        return parse_origins(self.frame_origins)


class ConsoleLink(models.Model):
    """A one-time link that opens one session's console page without a Paydesk login
    (embedded in a partner's software). Only a SHA-256 of the link's secret is stored."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    session = models.ForeignKey(PaySession, on_delete=models.PROTECT, related_name="+")
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    agent_reference = models.CharField(max_length=100, blank=True, help_text="The partner's name for the agent.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"console link {self.uuid} ({'used' if self.used_at else 'unused'})"
