"""The API fuzzed from its own OpenAPI document (/api/schema/) with schemathesis: every
operation, valid and invalid input, a fixed seed and a few examples each. Any 5xx, or
any answer the document does not describe (status, body, content type, headers),
fails the test.

The calls go through the WSGI application in-process, in the test's transaction, with
an all-scopes API key of a tenant that has one object of each kind (a connector never
verified, sessions with and without an amount, an exceptions item, a flow with a
reference, a saved report, an export job), so that answers with data, nulls included,
are checked too. Operations with an `{id}` are called once more with that object's id.
"""

import uuid

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from connectors.services import connector_stripe_secret_key
from payments.ivr import services as ivr_services
from payments.outbox.services import event_record
from payments.partner_webhooks.services import webhook_endpoint_create
from payments.reconciliation.models import ReconciliationItem
from payments.refunds.models import Refund
from payments.reports.models import ExportJob, SavedReport
from payments.sessions.models import PaySession
from tenants.services import Actor
from tests.factories import PaySessionFactory

SEED = 20261203
EXAMPLES = 8  # per operation, valid and invalid input together

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": EXAMPLES, "deterministic": True},
        # The coverage phase makes some 50 boundary cases per operation and the stateful one
        # chains calls: both for longer runs than the suite's (both were green on 2026-12-03).
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)
# What "as documented" means here. Not schemathesis' checks of how strict the API is
# (positive_data_acceptance, negative_data_rejection, …): a document cannot say that a
# connector named "Default" must exist, nor that unknown headers are ignored.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def wsgi_in_test_transaction():
    """Django's test client keeps the test's database connection open across requests;
    calling the WSGI application directly would close it after each one."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def twilio(world, twilio_sim, settings):
    """Twilio is the Pay simulator, which knows acme's account (and no live call)."""
    settings.TWILIO_API_BASE_URL = twilio_sim.url
    acme = world.acme
    keys = {n: {"stripe_secret_key": connector_stripe_secret_key(connector=c)} for n, c in acme.connectors.items()}
    twilio_sim.register_account(acme.tenant.twilio_account_sid, acme.auth_token, keys)


@pytest.fixture
def objects(world, twilio, api_for) -> dict[str, str]:
    """One object of each kind in acme; the path prefix of its routes → its id."""
    acme = world.acme
    connector = acme.connectors["Stripe_Dev"]
    started = api_for(acme.raw_key).post(
        "/api/v1/pay-sessions/",
        {"call_sid": "CA" + uuid.uuid4().hex, "connector": "Stripe_Dev", "charge_amount": "12.50"},
        format="json",
    )
    assert started.status_code == 201, started.content
    session = PaySession.objects.get(uuid=started.json()["id"])  # started at Twilio (the simulator)
    PaySessionFactory(tenant=acme.tenant, connector=connector, amount_minor=None, token_type="reusable",
                      status="cancelled", payment_sid="")  # fmt: skip
    now = timezone.now()
    item = ReconciliationItem.objects.create(
        tenant=acme.tenant, connector=connector, session=session, reason="amount_mismatch", subject=str(session.uuid),
        fingerprint="f", opened_at=now, last_seen_at=now, paydesk_data={"amount_minor": 1250, "currency": "USD"},
    )  # fmt: skip
    flow = ivr_services.payment_flow_create(
        tenant=acme.tenant, actor=Actor.system("test"), name="Bills", connector=connector, amount_source="reference"
    )
    ivr_services.payment_reference_register(
        flow=flow, reference="42", amount_minor=1250, description="", actor=Actor.system("test")
    )
    saved = SavedReport.objects.create(tenant=acme.tenant, name="All", kind="payments", format="csv")
    job = ExportJob.objects.create(
        tenant=acme.tenant, kind="payments", format="csv", spec={"kind": "payments", "format": "csv"},
        fingerprint="x", requested_by_label="t",
    )  # fmt: skip
    endpoint, _ = webhook_endpoint_create(
        tenant=acme.tenant, url="http://127.0.0.1:9/hooks", actor=Actor.system("test")
    )
    event = event_record(tenant_id=acme.tenant.pk, type="pay_session.created", data={"id": str(session.uuid)})
    refund = Refund.objects.create(
        tenant=acme.tenant, session=session, connector=session.connector, amount_minor=500, currency="USD",
        status="failed", failure_reason="Stripe refused it", requested_by="test",
    )  # fmt: skip
    return {
        "/api/v1/refunds/": str(refund.uuid),
        "/api/v1/webhook-endpoints/": str(endpoint.uuid),
        "/api/v1/events/": event.public_id,
        "/api/v1/connectors/": str(connector.uuid),
        "/api/v1/pay-sessions/": str(session.uuid),
        "/api/v1/reconciliation/items/": str(item.uuid),
        "/api/v1/payment-flows/": str(flow.uuid),
        "/api/v1/reports/saved/": str(saved.uuid),
        "/api/v1/reports/jobs/": str(job.uuid),
    }


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None, database=None)
def test_every_answer_is_as_documented_and_none_is_a_5xx(case, world, objects, wsgi_in_test_transaction):
    headers = {"Authorization": f"Bearer {world.acme.raw_key}"}
    case.call_and_validate(headers=headers, checks=CHECKS)
    if "id" in (case.path_parameters or {}):
        [known] = [i for prefix, i in objects.items() if case.operation.path.startswith(prefix)]
        case.path_parameters = {**case.path_parameters, "id": known}
        case.call_and_validate(headers=headers, checks=CHECKS)
