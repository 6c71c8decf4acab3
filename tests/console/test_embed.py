"""The embedded console: POST /api/v1/console-links/ makes a one-time link; opening it
shows one session's page without a login, framed only by the tenant's origins, with no
cookie; the page's own token is the only key to that session."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from payments.console.models import ConsoleLink
from payments.console.services import PAGE_TOKEN_SALT, console_link_create
from payments.sessions.models import PaySession
from tenants.models import AuditEvent, Scope
from tenants.services import Actor, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_api(world, api_for):
    return api_for(world.acme.raw_key)


def _link_for(session, api_key, agent="jane"):
    link, url = console_link_create(session=session, api_key=api_key, agent_reference=agent, actor=Actor.system("t"))
    return link, url.removeprefix("http://testserver")


def _token(page: str) -> str:
    return re.search(r'data-token="([^"]+)"', page).group(1)


# --- Making links -----------------------------------------------------------------------


def test_a_link_for_an_open_session_is_one_time_and_short_lived(acme_api, world, session_of, settings):
    session = session_of(None)
    response = acme_api.post(
        "/api/v1/console-links/", {"session": str(session.uuid), "agent_reference": "jane"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["url"].startswith("http://testserver/console/embed/")
    assert body["session"]["id"] == str(session.uuid)
    link = ConsoleLink.objects.get()
    assert link.agent_reference == "jane" and link.api_key == world.acme.api_key
    lifetime = link.expires_at - link.created_at
    assert (
        timedelta(seconds=settings.PAYDESK_CONSOLE_LINK_SECONDS - 1)
        < lifetime
        <= timedelta(seconds=settings.PAYDESK_CONSOLE_LINK_SECONDS)
    )
    secret = body["url"].rstrip("/").rsplit("/", 1)[1]
    assert secret not in str(ConsoleLink.objects.values().get())  # stored hashed
    assert AuditEvent.objects.filter(action="console.link_created", actor__startswith="api_key:").exists()


def test_another_tenants_session_is_404(acme_api, world, agents, session_of):
    theirs = session_of(agents["gus"], world.globex)
    response = acme_api.post("/api/v1/console-links/", {"session": str(theirs.uuid)}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not ConsoleLink.objects.exists()


def test_a_link_needs_the_payments_write_scope(world, api_for):
    _, read_only = api_key_create(
        tenant=world.acme.tenant, name="ro", scopes=[Scope.PAYMENTS_READ], actor=Actor.system("t")
    )
    response = api_for(read_only).post("/api/v1/console-links/", {"call_sid": "CA" + "0" * 32}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_scope"
    assert api_for(None).post("/api/v1/console-links/", {}, format="json").status_code in (401, 403)


def test_an_ended_session_gets_no_link(acme_api, session_of):
    ended = session_of(None, status="succeeded")
    response = acme_api.post("/api/v1/console-links/", {"session": str(ended.uuid)}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "session_not_open"


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "call_sid"),
        ({"call_sid": "CA123"}, "call_sid"),
        ({"call_sid": "CA" + "a" * 32, "amount": "12.345", "currency": "USD", "connector": "Stripe_Dev"}, "amount"),
        ({"call_sid": "CA" + "a" * 32, "connector": "Nope"}, "connector"),
        ({"session": "7d5f6a2e-8f8e-4b63-9a3b-3f9e6c1d2a10", "amount": "5.00"}, "amount"),
    ],
)
def test_bad_link_requests_are_400_naming_the_field(acme_api, body, field):
    response = acme_api.post("/api/v1/console-links/", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    assert not PaySession.objects.exists()


# --- Opening links ------------------------------------------------------------------------


def test_opening_a_link_shows_the_session_page_framed_only_by_the_tenants_origins(
    client, world, session_of, frame_origins
):
    frame_origins("https://crm.example.com", "http://localhost:8765")
    session = session_of(None)
    _, url = _link_for(session, world.acme.api_key)
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="console-session"' in page and _token(page)
    policy = response["Content-Security-Policy"]
    assert "frame-ancestors https://crm.example.com http://localhost:8765" in policy
    assert "X-Frame-Options" not in response
    assert response["Referrer-Policy"] == "no-referrer"
    assert not response.cookies  # nothing to set: a frame gets no cookies anyway
    assert "csrfmiddlewaretoken" not in page
    assert 'href="/console/"' not in page  # no way into the signed-in console from here
    opened = AuditEvent.objects.get(action="console.link_opened")
    assert opened.actor == f"console-link:jane (api_key:{world.acme.api_key.prefix})"


def test_without_origins_no_site_may_frame_the_embedded_page(client, world, session_of):
    _, url = _link_for(session_of(None), world.acme.api_key)
    response = client.get(url)
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"


def test_a_link_works_once(client, world, session_of, frame_origins):
    frame_origins("https://crm.example.com")
    _, url = _link_for(session_of(None), world.acme.api_key)
    assert client.get(url).status_code == 200
    again = client.get(url)
    assert again.status_code == 410
    assert "already used" in again.content.decode()
    assert "frame-ancestors https://crm.example.com" in again["Content-Security-Policy"]  # said inside the frame


def test_an_expired_link_is_refused(client, world, session_of):
    link, url = _link_for(session_of(None), world.acme.api_key)
    ConsoleLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(url)
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert ConsoleLink.objects.get(pk=link.pk).used_at is None


def test_a_link_of_a_revoked_key_or_an_unknown_link_is_refused(client, world, session_of):
    _, url = _link_for(session_of(None), world.acme.api_key)
    api_key_revoke(api_key=world.acme.api_key, actor=Actor.system("t"))
    assert client.get(url).status_code == 410
    assert client.get("/console/embed/not-a-link/").status_code == 410


# --- The page's own token -----------------------------------------------------------------


@pytest.fixture
def embedded(client, world, session_of):
    """(session, token) of an embedded page just opened."""
    session = session_of(None)
    _, url = _link_for(session, world.acme.api_key)
    return session, _token(client.get(url).content.decode())


def test_the_page_token_alone_opens_the_sessions_state_without_cookies(embedded):
    session, token = embedded
    fresh = Client()  # no cookie at all
    response = fresh.get(
        f"/console/embedded/{session.uuid}/state", HTTP_X_CONSOLE_TOKEN=token, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200 and response.json()["session"] == str(session.uuid)
    assert not response.cookies


def test_without_a_token_or_with_a_forged_one_the_state_is_401(embedded):
    session, token = embedded
    url = f"/console/embedded/{session.uuid}/state"
    assert Client().get(url, HTTP_ACCEPT="application/json").status_code == 401
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = Client().get(url, HTTP_X_CONSOLE_TOKEN=forged, HTTP_ACCEPT="application/json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "page_expired"


def test_once_the_links_key_is_revoked_the_page_only_shows_and_is_not_renewed(embedded, world, monkeypatch, settings):
    import time

    session, token = embedded
    api_key_revoke(api_key=world.acme.api_key, actor=Actor.system("t"))
    response = Client().post(f"/console/embedded/{session.uuid}/cancel", HTTP_X_CONSOLE_TOKEN=token)
    assert response.status_code == 401
    assert PaySession.objects.get(pk=session.pk).status == "created"
    start = time.time()
    monkeypatch.setattr(time, "time", lambda: start + settings.PAYDESK_CONSOLE_PAGE_TOKEN_SECONDS / 2)
    shown = Client().get(f"/console/embedded/{session.uuid}/state", HTTP_X_CONSOLE_TOKEN=token)
    assert shown.status_code == 200 and "X-Console-Token" not in shown


def test_the_token_opens_its_own_session_only(embedded, session_of):
    _, token = embedded
    other = session_of(None)
    response = Client().get(
        f"/console/embedded/{other.uuid}/state", HTTP_X_CONSOLE_TOKEN=token, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 404
    response = Client().post(f"/console/embedded/{other.uuid}/cancel", HTTP_X_CONSOLE_TOKEN=token)
    assert response.status_code == 404
    assert PaySession.objects.get(pk=other.pk).status == "created"


def test_an_old_token_is_refused_and_a_used_one_is_renewed(embedded, settings, monkeypatch):
    """Time moved with the clock both the signer and the renewal read (time.time)."""
    import time

    session, token = embedded
    url = f"/console/embedded/{session.uuid}/state"
    lifetime, start = settings.PAYDESK_CONSOLE_PAGE_TOKEN_SECONDS, time.time()
    assert Client().get(url, HTTP_X_CONSOLE_TOKEN=token, HTTP_ACCEPT="application/json").get("X-Console-Token") is None
    # Past a third of its lifetime, a poll brings a fresh token.
    monkeypatch.setattr(time, "time", lambda: start + lifetime / 2)
    response = Client().get(url, HTTP_X_CONSOLE_TOKEN=token, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    renewed = response["X-Console-Token"]
    assert renewed != token
    # Past its lifetime, the old token is refused; the renewed one still works.
    monkeypatch.setattr(time, "time", lambda: start + lifetime + 5)
    assert Client().get(url, HTTP_X_CONSOLE_TOKEN=token, HTTP_ACCEPT="application/json").status_code == 401
    assert Client().get(url, HTTP_X_CONSOLE_TOKEN=renewed, HTTP_ACCEPT="application/json").status_code == 200


def test_a_token_is_not_accepted_as_any_other_signed_value(embedded):
    from django.core import signing

    _, token = embedded
    with pytest.raises(signing.BadSignature):
        signing.TimestampSigner().unsign_object(token)
    assert signing.TimestampSigner(salt=PAGE_TOKEN_SALT).unsign_object(token)["s"]
