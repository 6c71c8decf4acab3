"""Refunds in the admin: the refund form on the pay-session page for owner, admin and
finance only, its confirmation step, the refunds list, and another tenant's objects
answering 404."""

import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from payments.refunds.models import Refund
from tenants.models import AuditEvent, Role
from tests.factories import MembershipFactory, PaySessionFactory, UserFactory
from tests.refunds.conftest import paid, refund_via_api, stripe_refunds

pytestmark = pytest.mark.django_db


def member(tenant, role: str):
    user = UserFactory()
    MembershipFactory(user=user, tenant=tenant, role=role)
    return user


def page(session) -> str:
    return reverse("admin:payments_paysession_change", args=[session.pk])


def refund_view(session) -> str:
    return reverse("admin:refunds_refund_session", args=[session.pk])


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def refundable(dev, stripe_objects):
    return paid(dev, stripe_objects, amount=2000)


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.FINANCE])
def test_the_roles_that_handle_money_see_the_refund_form_prefilled_with_what_remains(
    client, world, refundable, acme_api, stripe_proxy, role
):
    session, _ = refundable
    refund_via_api(acme_api, session, amount="5.00", note="first")
    client.force_login(member(world.acme.tenant, role))

    html = client.get(page(session)).content.decode()

    assert "Refunds" in html and "Paid 20.00 USD · refunded 5.00 USD · pending 0.00 USD" in html
    assert 'name="refund-amount" value="15.00"' in html
    assert 'name="refund-reason"' in html and 'name="refund-note"' in html
    assert f'formaction="{refund_view(session)}"' in html
    assert "first" in html  # the refund made through the API is listed


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_see_the_refunds_but_never_the_form(client, world, refundable, role):
    session, _ = refundable
    user = member(world.acme.tenant, role)
    client.force_login(user)

    html = client.get(page(session)).content.decode()
    posted = client.post(refund_view(session), {"refund-amount": "1.00", "refund-review": "1"})

    assert "Paid 20.00 USD" in html and "refund-amount" not in html and "formaction" not in html
    assert posted.status_code == 403
    assert client.get(refund_view(session)).status_code == 403
    assert not Refund.objects.exists()


def test_refunding_from_the_admin_asks_for_confirmation_then_refunds_once(
    client, world, refundable, stripe_proxy, stripe_objects
):
    session, intent = refundable
    finance = member(world.acme.tenant, Role.FINANCE)
    client.force_login(finance)
    form = {"refund-amount": "7.25", "refund-reason": "requested_by_customer", "refund-note": "Late delivery"}

    review = client.post(refund_view(session), {**form, "refund-review": "1"})

    assert review.status_code == 200 and not stripe_refunds(stripe_objects, intent)
    html = review.content.decode()
    assert "Confirm refund of 7.25 USD" in html and "Late delivery" in html
    token = re.search(r'name="refund-token" value="([0-9a-f]+)"', html).group(1)
    confirm = {**form, "refund-token": token, "refund-confirm": "1"}
    done = client.post(refund_view(session), confirm)
    twice = client.post(refund_view(session), confirm)  # a double click on "Confirm"

    assert done.status_code == 302 and done["Location"] == page(session)
    assert messages_of(done)[0][0] == "success" and "Refunded 7.25 USD (re_" in messages_of(done)[0][1]
    assert twice.status_code == 302
    [made] = stripe_refunds(stripe_objects, intent)
    assert made["amount"] == 725 and made["reason"] == "requested_by_customer"
    refund = Refund.objects.get()
    assert (refund.requested_by_user, refund.requested_by, refund.note) == (
        finance,
        f"user:{finance.username}",
        "Late delivery",
    )
    assert AuditEvent.objects.filter(action="refund.succeeded", actor_user_id=finance.pk).count() == 1


def test_a_refused_amount_is_shown_on_the_form_and_nothing_is_refunded(client, world, refundable, stripe_objects):
    session, intent = refundable
    client.force_login(world.acme.owner)

    review = client.post(refund_view(session), {"refund-amount": "abc", "refund-review": "1"})
    too_much = client.post(
        refund_view(session), {"refund-amount": "25.00", "refund-token": "t" * 8, "refund-confirm": "1"}
    )

    assert review.status_code == 200 and "is not a decimal amount" in review.content.decode()
    assert too_much.status_code == 302
    assert messages_of(too_much)[0] == (
        "error",
        "Not refunded: 25.00 USD is more than what remains to refund (20.00 USD of 20.00 USD).",
    )
    assert stripe_refunds(stripe_objects, intent) == []


def test_a_session_that_cannot_be_refunded_says_why_instead_of_a_form(client, world):
    failed = PaySessionFactory(
        tenant=world.acme.tenant,
        connector=world.acme.connectors["Stripe_Dev"],
        status="failed",
        result="payment-connector-error",
    )
    client.force_login(world.acme.owner)

    html = client.get(page(failed)).content.decode()

    assert "Only a succeeded payment can be refunded; this session is failed." in html
    assert "refund-amount" not in html


def test_another_tenants_session_and_refunds_answer_404(client, world, stripe_objects, stripe_proxy, api_for):
    theirs, _ = paid(world.globex.connectors["Stripe_Dev"], stripe_objects)
    refund_via_api(api_for(world.globex.raw_key), theirs, amount="1.00")
    their_refund = Refund.objects.get()
    client.force_login(world.acme.owner)

    assert client.get(refund_view(theirs)).status_code == 404
    assert client.post(refund_view(theirs), {"refund-amount": "1.00", "refund-confirm": "1"}).status_code == 404
    assert client.get(reverse("admin:refunds_refund_change", args=[their_refund.pk])).status_code == 404
    listing = client.get(reverse("admin:refunds_refund_changelist"))
    assert listing.status_code == 200 and list(listing.context["cl"].queryset) == []
    assert Refund.objects.count() == 1


def test_the_refunds_list_filters_and_shows_only_the_tenants_refunds(
    client, world, refundable, acme_api, stripe_proxy, stripe_objects
):
    session, intent = refundable
    refund_via_api(acme_api, session, amount="2.00")
    stripe_objects.refund(intent["charge_id"], amount=300)
    from tests.reconciliation.conftest import reconcile

    reconcile(session.connector)
    client.force_login(member(world.acme.tenant, Role.VIEWER))
    url = reverse("admin:refunds_refund_changelist")

    everything = client.get(url)
    outside = client.get(url, {"origin__exact": "stripe"})
    one = client.get(reverse("admin:refunds_refund_change", args=[Refund.objects.get(origin="stripe").pk]))

    assert {r.amount_minor for r in everything.context["cl"].queryset} == {200, 300}
    assert [r.amount_minor for r in outside.context["cl"].queryset] == [300]
    assert one.status_code == 200 and "made outside Paydesk" in one.content.decode()
