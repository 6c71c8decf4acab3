"""Who may open which console page: agents and above, their own sessions (supervisors:
all of the tenant's), never another tenant's; 404 rather than 403 for a session."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from payments.sessions.models import PaySession
from tenants.models import Tenant
from tenants.services import Actor

pytestmark = pytest.mark.django_db


def _pages(session):
    base = f"/console/sessions/{session.uuid}/"
    return [base, base + "state"]


def test_an_anonymous_visitor_is_sent_to_the_console_sign_in(client, agents):
    response = client.get("/console/?call_sid=CA1")
    assert response.status_code == 302
    assert response["Location"].startswith("/console/login/?next=/console/%3Fcall_sid%3DCA1")


def test_an_anonymous_poll_gets_a_401_in_the_error_envelope(client, agents, session_of):
    session = session_of(agents["ann"])
    response = client.get(f"/console/sessions/{session.uuid}/state", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "login_required"


def test_signing_in_on_the_console_page_leads_back_to_the_prefilled_form(client, agents):
    response = client.post(
        "/console/login/", {"username": "ann", "password": "pw", "next": "/console/?amount=12.50"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/console/?amount=12.50"
    assert 'value="12.50"' in response.content.decode()


@pytest.mark.parametrize("role_user", ["fay", "vic"])
def test_finance_and_viewers_are_refused_the_console(client, agents, session_of, role_user):
    client.force_login(agents[role_user])
    assert client.get("/console/").status_code == 403
    session = session_of(agents["ann"])
    assert client.get(f"/console/sessions/{session.uuid}/").status_code == 403


def test_an_agent_sees_only_the_sessions_they_started(client, agents, session_of):
    own = session_of(agents["ann"])
    other = session_of(agents["bob"])
    client.force_login(agents["ann"])
    listing = client.get("/console/").content.decode()
    assert str(own.uuid) in listing and str(other.uuid) not in listing
    for url in _pages(own):
        assert client.get(url).status_code == 200
    for url in _pages(other):
        assert client.get(url).status_code == 404
    for action in ("capture", "complete", "cancel", "retry"):
        response = client.post(f"/console/sessions/{other.uuid}/{action}", {"field": "payment-card-number"})
        assert response.status_code == 404
    assert PaySession.objects.get(pk=other.pk).status == "created"


def test_another_tenants_session_is_404_for_an_agent_and_for_an_owner(client, agents, session_of, world):
    theirs = session_of(agents["gus"], world.globex)
    for user in (agents["ann"], agents["owner"]):
        client.force_login(user)
        for url in _pages(theirs):
            assert client.get(url).status_code == 404
        assert client.post(f"/console/sessions/{theirs.uuid}/cancel").status_code == 404


def test_supervisors_see_every_session_of_the_tenant_their_own_first(client, agents, session_of):
    ann = session_of(agents["ann"])
    mine = session_of(agents["owner"])
    api = session_of(None)
    client.force_login(agents["owner"])
    listing = client.get("/console/").content.decode()
    positions = [listing.index(str(s.uuid)) for s in (mine, ann, api)]
    assert positions[0] == min(positions)  # own first
    assert all(p >= 0 for p in positions)
    assert client.get(f"/console/sessions/{ann.uuid}/").status_code == 200


def test_ivr_sessions_are_not_console_sessions(client, agents, session_of):
    ivr = session_of(agents["owner"], channel=PaySession.Channel.IVR)
    client.force_login(agents["owner"])
    assert client.get(f"/console/sessions/{ivr.uuid}/").status_code == 404


def test_a_suspended_tenant_has_no_console(client, agents, world):
    Tenant.objects.filter(pk=world.acme.tenant.pk).update(status=Tenant.Status.SUSPENDED)
    client.force_login(agents["ann"])
    assert client.get("/console/").status_code == 403


def test_actions_of_a_signed_in_agent_need_the_csrf_token(agents, session_of):
    session = session_of(agents["ann"])
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(agents["ann"])
    response = strict.post(f"/console/sessions/{session.uuid}/cancel")
    assert response.status_code == 403
    assert PaySession.objects.get(pk=session.pk).status == "created"


def test_console_pages_may_not_be_framed_and_load_nothing_from_elsewhere(client, agents, session_of):
    client.force_login(agents["ann"])
    session = session_of(agents["ann"])
    for url in ["/console/", "/console/login/", *_pages(session)]:
        response = client.get(url)
        policy = response["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy, url
        script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
        assert "'self'" in script_src and "'unsafe-inline'" not in script_src and "http" not in script_src
        assert response["X-Frame-Options"] == "DENY"


def test_requesting_a_field_the_session_does_not_ask_for_is_refused_in_words(client, agents, session_of):
    session = session_of(agents["ann"], payment_method="credit-card")
    client.force_login(agents["ann"])
    response = client.post(
        f"/console/sessions/{session.uuid}/capture", {"field": "bank-routing-number"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert "cannot be captured in this session" in response.json()["error"]["message"]
    assert response.json()["state"]["session"] == str(session.uuid)


def test_polls_do_not_keep_a_signed_in_session_alive_but_the_agents_own_requests_do(client, agents, session_of):
    from django.contrib.sessions.models import Session

    session = session_of(agents["ann"])
    client.force_login(agents["ann"])
    key = client.cookies["sessionid"].value
    Session.objects.filter(pk=key).update(expire_date=timezone.now() + timedelta(minutes=5))
    before = Session.objects.get(pk=key).expire_date
    for _ in range(3):
        assert client.get(f"/console/sessions/{session.uuid}/state", HTTP_ACCEPT="application/json").status_code == 200
    assert Session.objects.get(pk=key).expire_date == before
    assert client.get(f"/console/sessions/{session.uuid}/").status_code == 200
    assert Session.objects.get(pk=key).expire_date > before


def test_the_second_factor_guards_the_console_and_not_the_embedded_page(client, agents, world, settings):
    """The security work's middleware covers /console/ (PAYDESK_MFA_PROTECTED_PATHS): a
    signed-in agent with a device is sent to verify it, one without to enrol when it is
    required; the embedded page has no login, so nothing to ask."""
    from django.urls import reverse

    from payments.console.services import console_link_create
    from tests.factories import PaySessionFactory
    from tests.security.conftest import enrol_totp

    settings.PAYDESK_REQUIRE_MFA = True
    enrol_totp(agents["ann"])
    assert client.post("/console/login/", {"username": "ann", "password": "pw"}).status_code == 302
    response = client.get("/console/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("security:verify"))

    client.logout()
    client.force_login(agents["bob"])  # no device yet
    response = client.get("/console/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("security:overview"))

    session = PaySessionFactory(tenant=world.acme.tenant, connector=world.acme.connectors["Stripe_Dev"])
    _, url = console_link_create(
        session=session, api_key=world.acme.api_key, agent_reference="", actor=Actor.system("t")
    )
    assert Client().get(url.removeprefix("http://testserver")).status_code == 200
