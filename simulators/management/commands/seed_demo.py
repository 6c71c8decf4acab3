"""Idempotent demo data for a first look: tenant `acme`, its three Stripe connectors,
an admin user and a well-known API key. Development only (refuses when DEBUG is off)."""

import hashlib

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import transaction

from connectors.models import ConnectorInstance
from connectors.services import connector_create, connector_stripe_secret_key
from payments.ivr.models import PaymentFlow
from payments.ivr.services import payment_flow_create
from simulators.twilio_pay import SimulatorClient, SimulatorError
from tenants.management.cli import OperatorCommand
from tenants.models import ApiKey, Membership, Role, Scope, Tenant
from tenants.services import Actor, api_key_create, membership_set, tenant_create, tenant_twilio_auth_token


def _hex(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


DEMO_SLUG = "acme"
DEMO_ACCOUNT_SID = "AC" + _hex("paydesk-demo-account")
DEMO_AUTH_TOKEN = _hex("paydesk-demo-auth-token")
DEMO_USERNAME = "acme-admin"
DEMO_PASSWORD = "acme-admin-demo"  # noqa: S105 - development-only demo login, printed by the command
DEMO_AGENT_USERNAME = "acme-agent"
DEMO_AGENT_PASSWORD = "acme-agent-demo"  # noqa: S105 - development-only demo login, printed by the command
DEMO_API_KEY = "pdk_acmedemo00_" + _hex("paydesk-demo-api-key") * 2
DEMO_FLOW_NAME = "Pay your invoice"
DEMO_CONNECTORS = [
    ("Stripe_Prod", "production", "sk_live_" + _hex("demo-prod")[:24]),
    ("Stripe_Stage", "staging", "sk_test_" + _hex("demo-stage")[:24]),
    ("Stripe_Dev", "development", "sk_test_" + _hex("demo-dev")[:24]),
]


class Command(OperatorCommand):
    help = "Create (or complete) the demo tenant 'acme'. Safe to run again. Development only."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--register-with-simulator",
            action="store_true",
            help="Also register the demo Twilio account and its connectors with the Twilio Pay simulator at "
            "TWILIO_API_BASE_URL, so that the API can start sessions at once (make run does this).",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates well-known credentials and runs only with DEBUG on.")
        actor = Actor.system("seed_demo")
        with transaction.atomic():
            tenant = Tenant.objects.filter(slug=DEMO_SLUG).first() or tenant_create(
                slug=DEMO_SLUG,
                name="Acme Corp",
                twilio_account_sid=DEMO_ACCOUNT_SID,
                twilio_auth_token=DEMO_AUTH_TOKEN,
                time_zone="America/New_York",
                default_currency="USD",
                actor=actor,
            )
            existing = set(ConnectorInstance.objects.filter(tenant=tenant).values_list("unique_name", flat=True))
            for name, environment, key in DEMO_CONNECTORS:
                if name not in existing:
                    connector_create(
                        tenant=tenant,
                        unique_name=name,
                        environment=environment,
                        stripe_secret_key=key,
                        stripe_webhook_secret="whsec_" + _hex(f"demo-webhook-{name}"),
                        notes="Demo connector (seed_demo).",
                        actor=actor,
                    )
            user, created = get_user_model().objects.get_or_create(
                username=DEMO_USERNAME, defaults={"is_staff": True, "email": "admin@acme.example"}
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            if not Membership.objects.filter(tenant=tenant, user=user).exists():
                membership_set(tenant=tenant, user=user, role=Role.OWNER, actor=actor)
            # An agent for the console: takes payments, sees only the sessions they started.
            agent, created = get_user_model().objects.get_or_create(
                username=DEMO_AGENT_USERNAME, defaults={"is_staff": False, "email": "agent@acme.example"}
            )
            if created:
                agent.set_password(DEMO_AGENT_PASSWORD)
                agent.save()
            if not Membership.objects.filter(tenant=tenant, user=agent).exists():
                membership_set(tenant=tenant, user=agent, role=Role.AGENT, actor=actor)
            flow = _demo_flow(tenant, actor)
            prefix = DEMO_API_KEY.split("_")[1]
            if not ApiKey.objects.filter(prefix=prefix).exists():
                api_key_create(
                    tenant=tenant, name="Demo partner app", scopes=list(Scope.values), actor=actor, raw_key=DEMO_API_KEY
                )
        if options["register_with_simulator"]:
            _register_with_simulator(tenant)
        base = settings.PAYDESK_PUBLIC_BASE_URL
        self.emit(
            options,
            {
                "tenant": tenant.slug,
                "admin_url": f"{base}/admin/",
                "username": DEMO_USERNAME,
                "password": DEMO_PASSWORD,
                "api_key": DEMO_API_KEY,
                "api_docs": f"{base}/api/docs/",
                "console_url": f"{base}/console/",
                "agent_username": DEMO_AGENT_USERNAME,
                "agent_password": DEMO_AGENT_PASSWORD,
                "connectors": [name for name, _, _ in DEMO_CONNECTORS],
                "ivr_flow": str(flow.uuid),
            },
            f"Demo tenant '{tenant.slug}' is ready with Stripe_Prod, Stripe_Stage and Stripe_Dev.\n"
            f"  Admin:    {base}/admin/  (user {DEMO_USERNAME}, password {DEMO_PASSWORD})\n"
            f"  Console:  {base}/console/  (the admin above, or agent {DEMO_AGENT_USERNAME}, "
            f"password {DEMO_AGENT_PASSWORD})\n"
            f"  API docs: {base}/api/docs/\n"
            f"  API key:  {DEMO_API_KEY}\n"
            f"  Try:      curl -H 'Authorization: Bearer {DEMO_API_KEY}' {base}/api/v1/connectors/\n"
            f"  Payment:  .venv/bin/python manage.py simulate_payment --tenant acme --connector Stripe_Dev "
            f"--amount 12.50\n"
            f"  IVR flow: {flow.name} ({flow.uuid}), e.g. .venv/bin/python manage.py simulate_ivr_call "
            f"--flow {flow.uuid} --amount-digits 12 50",
        )


def _register_with_simulator(tenant) -> None:
    sim = SimulatorClient(settings.TWILIO_API_BASE_URL)
    connectors = {
        c.unique_name: {"stripe_secret_key": connector_stripe_secret_key(connector=c)}
        for c in tenant.connectors.filter(mode=ConnectorInstance.Mode.TEST)
    }
    try:
        sim.register_account(tenant.twilio_account_sid, tenant_twilio_auth_token(tenant=tenant), connectors)
    except (requests.RequestException, SimulatorError) as exc:
        raise CommandError(f"The Twilio Pay simulator does not answer at {sim.url} ({exc}).") from None


def _demo_flow(tenant, actor):
    """A caller-keyed IVR flow on Stripe_Dev: dollars then cents, $1.00 to $500.00."""
    existing = PaymentFlow.objects.filter(tenant=tenant, name=DEMO_FLOW_NAME).first()
    if existing:
        return existing
    return payment_flow_create(
        tenant=tenant,
        actor=actor,
        name=DEMO_FLOW_NAME,
        connector=ConnectorInstance.objects.get(tenant=tenant, unique_name="Stripe_Dev"),
        currency="USD",
        min_amount_minor=100,
        max_amount_minor=50_000,
        description="Demo phone payment",
    )
