"""factory_boy factories; related rows always stay in one tenant."""

import secrets

import factory
from django.contrib.auth import get_user_model

from connectors.models import ConnectorInstance
from tenants import crypto
from tenants.models import Membership, Role, Tenant


def _hex(n: int) -> str:
    return secrets.token_hex(n // 2)


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.Sequence(lambda n: f"Tenant {n}")
    twilio_account_sid = factory.LazyFunction(lambda: "AC" + _hex(32))
    twilio_auth_token_ciphertext = factory.LazyAttribute(lambda o: crypto.encrypt(o.auth_token))
    twilio_auth_token_last4 = factory.LazyAttribute(lambda o: o.auth_token[-4:])

    class Params:
        auth_token = factory.LazyFunction(lambda: _hex(32))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.OWNER


class ConnectorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConnectorInstance

    tenant = factory.SubFactory(TenantFactory)
    unique_name = factory.Sequence(lambda n: f"Stripe_{n}")
    environment = ConnectorInstance.Environment.DEVELOPMENT
    mode = factory.LazyAttribute(lambda o: "live" if o.environment == "production" else "test")
    stripe_secret_key_ciphertext = factory.LazyAttribute(lambda o: crypto.encrypt(o.secret_key))
    stripe_secret_key_last4 = factory.LazyAttribute(lambda o: o.secret_key[-4:])
    stripe_webhook_secret_ciphertext = factory.LazyAttribute(lambda o: crypto.encrypt(o.webhook_secret))
    stripe_webhook_secret_last4 = factory.LazyAttribute(lambda o: o.webhook_secret[-4:])

    class Params:
        secret_key = factory.LazyAttribute(lambda o: f"sk_{o.mode}_{_hex(24)}")
        webhook_secret = factory.LazyFunction(lambda: f"whsec_{_hex(24)}")


class PaySessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "payments.PaySession"

    tenant = factory.SubFactory(TenantFactory)
    connector = factory.SubFactory(ConnectorFactory, tenant=factory.SelfAttribute("..tenant"))
    call_sid = factory.LazyFunction(lambda: "CA" + _hex(32))
    payment_sid = factory.LazyFunction(lambda: "PK" + _hex(32))
    idempotency_key = factory.Sequence(lambda n: f"idem-{n}")
    request_fingerprint = "f" * 64
    amount_minor = 1250
    currency = "USD"
    status = "created"
    required_fields = factory.LazyFunction(
        lambda: ["payment-card-number", "expiration-date", "security-code", "postal-code"]
    )
