"""The flow editor in the admin: tenant-scoped, saved through the service, amounts in
major units, prompts editable, a TwiML preview; references read-only."""

import html
import xml.etree.ElementTree as ET

import pytest

from payments.ivr import services
from payments.ivr.models import PaymentFlow, PaymentReference
from payments.ivr.prompts import PROMPTS
from tenants.models import AuditEvent
from tenants.services import Actor

pytestmark = pytest.mark.django_db

ADD = "/admin/ivr/paymentflow/add/"


def change_url(flow):
    return f"/admin/ivr/paymentflow/{flow.pk}/change/"


@pytest.fixture
def owner(client, world):
    client.force_login(world.acme.owner)
    return client


def form_data(world, **overrides):
    data = {
        "tenant": world.acme.tenant.pk,
        "name": "Water bills",
        "connector": world.acme.connectors["Stripe_Dev"].pk,
        "is_active": "on",
        "operation": "charge",
        "token_type": "reusable",
        "currency": "USD",
        "amount_source": "caller",
        "amount_entry": "units-then-cents",
        "fixed_amount": "",
        "min_amount": "5.00",
        "max_amount": "1000",
        "language": "en-US",
        "max_attempts": "3",
        "retry_on_decline": "on",
        "timeout": "5",
        "valid_card_types": ["visa", "mastercard"],
        "security_code": "on",
        "postal_code": "on",
        "min_postal_code_length": "",
        "description": "Water",
        "parameters": "{}",
        **{f"prompt_{key}": "" for key in PROMPTS},
    }
    data.update(overrides)
    return data


def test_an_owner_creates_a_flow_with_amounts_in_major_units_and_a_prompt(owner, world):
    response = owner.post(ADD, form_data(world, prompt_greeting="Welcome to {business} water."))
    assert response.status_code == 302, response.context["adminform"].form.errors
    flow = PaymentFlow.objects.get()
    assert (flow.tenant, flow.min_amount_minor, flow.max_amount_minor) == (world.acme.tenant, 500, 100000)
    assert flow.valid_card_types == "visa mastercard"
    assert flow.prompts == {"greeting": "Welcome to {business} water."}
    assert AuditEvent.objects.filter(action="ivr_flow.created", tenant=world.acme.tenant).exists()


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"min_amount": "10", "max_amount": "5"}, "max_amount"),
        ({"min_amount": "1.005"}, "min_amount"),
        ({"amount_source": "fixed", "fixed_amount": ""}, "fixed_amount"),
        ({"amount_source": "fixed", "fixed_amount": "2000"}, "fixed_amount"),  # above the maximum
        ({"prompt_readback": "You entered {amont}."}, "prompt_readback"),
        ({"currency": "XXX"}, "currency"),
        ({"max_attempts": "6"}, "max_attempts"),
    ],
)
def test_invalid_flows_are_refused_with_the_field_named(owner, world, overrides, field):
    response = owner.post(ADD, form_data(world, **overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert not PaymentFlow.objects.exists()


def test_another_tenants_connector_cannot_be_chosen(owner, world):
    response = owner.post(ADD, form_data(world, connector=world.globex.connectors["Stripe_Dev"].pk))
    assert "connector" in response.context["adminform"].form.errors
    assert not PaymentFlow.objects.exists()
    page = owner.get(ADD).content.decode()
    assert f'value="{world.globex.connectors["Stripe_Dev"].pk}"' not in page


def test_the_change_page_shows_the_voice_url_and_a_twiml_preview(owner, make_flow):
    flow = make_flow(min_amount_minor=2000)
    page = owner.get(change_url(flow)).content.decode()
    assert f"http://testserver/twilio/ivr/{flow.voice_token}/voice/" in page
    assert "Sample amount 20.00 USD" in page
    previews = [html.unescape(chunk.split("</pre>")[0]) for chunk in page.split("<pre>")[1:]]
    pays = [ET.fromstring(p).find("Pay") for p in previews]  # noqa: S314 - our own preview
    pay = next(p for p in pays if p is not None)
    assert pay.get("chargeAmount") == "20.00" and pay.get("paymentConnector") == "Stripe_Dev"
    assert "You entered twenty dollars." in page


def test_the_preview_of_another_amount(owner, make_flow, world):
    flow = make_flow(currency="KWD")
    response = owner.get(f"/admin/ivr/paymentflow/{flow.pk}/preview/?amount=1.234")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'chargeAmount="1.234"' in text and "one dinar and two hundred thirty-four fils" in text
    assert owner.get(f"/admin/ivr/paymentflow/{flow.pk}/preview/?amount=1.2345").status_code == 400
    assert not PaymentFlow.objects.exclude(pk=flow.pk).exists()


def test_another_tenants_flow_is_404_in_the_admin(owner, make_flow, world):
    theirs = make_flow(world.globex)
    assert owner.get(change_url(theirs)).status_code == 404
    assert owner.get(f"/admin/ivr/paymentflow/{theirs.pk}/preview/?amount=1").status_code == 404
    assert theirs.name not in owner.get("/admin/ivr/paymentflow/").content.decode()


def test_references_are_read_only_and_scoped(owner, make_flow, world):
    mine = make_flow(amount_source="reference")
    theirs = make_flow(world.globex, amount_source="reference")
    services.payment_reference_register(flow=mine, reference="111", amount_minor=100, actor=Actor.system("t"))
    services.payment_reference_register(flow=theirs, reference="222", amount_minor=100, actor=Actor.system("t"))
    page = owner.get("/admin/ivr/paymentreference/").content.decode()
    assert "111" in page and "222" not in page
    assert owner.get("/admin/ivr/paymentreference/add/").status_code == 403
    ref = PaymentReference.objects.get(reference="111")
    detail = owner.get(f"/admin/ivr/paymentreference/{ref.pk}/change/")
    assert detail.status_code == 200 and b'name="amount_minor"' not in detail.content
    other = PaymentReference.objects.get(reference="222")
    assert owner.get(f"/admin/ivr/paymentreference/{other.pk}/change/").status_code == 404


def test_ivr_sessions_are_in_the_pay_session_list(owner, make_flow, world):
    flow = make_flow()
    payment = services.ivr_payment_start(flow=flow, call_sid="CA" + "a" * 32, amount_minor=1250)
    page = owner.get("/admin/payments/paysession/?channel__exact=ivr").content.decode()
    assert f"/admin/payments/paysession/{payment.pay_session.pk}/change/" in page
    assert owner.get(f"/admin/payments/paysession/{payment.pay_session.pk}/change/").status_code == 200


def test_the_pay_session_search_box_finds_an_ivr_payment_by_its_reference(owner, make_flow, world):
    from payments.ivr.models import IvrPayment
    from tests.factories import PaySessionFactory

    flow, theirs = make_flow(amount_source="reference"), make_flow(world.globex, amount_source="reference")
    found = []
    for f, tw in ((flow, world.acme), (theirs, world.globex)):
        ref, _ = services.payment_reference_register(
            flow=f, reference="4711", amount_minor=100, actor=Actor.system("t")
        )
        s = PaySessionFactory(tenant=tw.tenant, connector=f.connector, channel="ivr")
        IvrPayment.objects.create(tenant=tw.tenant, flow=f, pay_session=s, reference=ref)
        found.append(s)
    PaySessionFactory(tenant=world.acme.tenant, connector=flow.connector, channel="ivr")  # no reference

    page = owner.get("/admin/payments/paysession/", {"q": "4711"})

    assert [s.pk for s in page.context["cl"].result_list] == [found[0].pk]  # not globex's
