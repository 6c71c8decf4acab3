"""The pay-sessions admin: tenant scoping (lists, filters, search, object URLs, actions),
read-only sessions, the event timeline, and cancelling through the service."""

import secrets
import uuid
from datetime import UTC, datetime

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from payments.sessions.admin import ConnectorFilter
from payments.sessions.models import PayEvent, PaySession
from payments.sessions.services import pay_callback_record
from tenants.models import Role
from tests.factories import ConnectorFactory, MembershipFactory, PaySessionFactory, UserFactory


def url(name: str, *args) -> str:
    return reverse(f"admin:payments_paysession_{name}", args=args)


def member(tenant, role: str):
    user = UserFactory()
    MembershipFactory(user=user, tenant=tenant, role=role)
    return user


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def action(name: str, *pks) -> dict:
    return {"action": name, "_selected_action": [str(pk) for pk in pks], "index": "0"}


def listed(response) -> set[int]:
    assert response.status_code == 200
    return {s.pk for s in response.context["cl"].queryset}


def session(tw, connector: str = "Stripe_Dev", **fields) -> PaySession:
    return PaySessionFactory(tenant=tw.tenant, connector=tw.connectors[connector], **fields)


def never_at_twilio(tw, **fields) -> PaySession:
    """A session Twilio never started: cancelling it needs no request to Twilio."""
    return session(tw, payment_sid="", **fields)


@pytest.fixture
def as_acme_owner(client, world):
    client.force_login(world.acme.owner)
    return client


@pytest.fixture
def as_superuser(client, superuser):
    client.force_login(superuser)
    return client


# --- Scoping: the list, its filters, object URLs ----------------------------------------


def test_owner_list_shows_only_own_sessions_and_filter_offers_only_own_connectors(world, as_acme_owner):
    mine = {session(world.acme, name).pk for name in ("Stripe_Prod", "Stripe_Stage", "Stripe_Dev")}
    hidden = ConnectorFactory(tenant=world.globex.tenant, unique_name="Globex_Hidden_Gateway")
    PaySessionFactory(tenant=world.globex.tenant, connector=hidden)
    session(world.globex)

    response = as_acme_owner.get(url("changelist"))

    assert listed(response) == mine
    spec = next(f for f in response.context["cl"].filter_specs if isinstance(f, ConnectorFilter))
    offered = {int(pk) for pk, _ in spec.lookup_choices}
    assert offered == {c.pk for c in world.acme.connectors.values()}
    assert sorted(label for _, label in spec.lookup_choices) == ["Stripe_Dev", "Stripe_Prod", "Stripe_Stage"]
    assert b"Globex_Hidden_Gateway" not in response.content
    assert b"globex" not in response.content.lower()


def test_a_forged_connector_filter_value_shows_nothing_of_the_other_tenant(world, as_acme_owner):
    session(world.acme)
    session(world.globex)

    response = as_acme_owner.get(url("changelist"), {"connector": world.globex.connectors["Stripe_Dev"].pk})

    assert listed(response) == set()


def test_superuser_sees_every_tenant_with_connectors_named_by_tenant(world, as_superuser):
    both = {session(world.acme).pk, session(world.globex).pk}

    response = as_superuser.get(url("changelist"))

    assert listed(response) == both
    spec = next(f for f in response.context["cl"].filter_specs if isinstance(f, ConnectorFilter))
    labels = {label for _, label in spec.lookup_choices}
    assert {"Acme · Stripe_Dev", "Globex · Stripe_Dev"} <= labels


@pytest.mark.parametrize("role", [Role.OWNER, Role.VIEWER])
def test_other_tenants_session_urls_answer_404(world, client, role):
    client.force_login(world.acme.owner if role == Role.OWNER else member(world.acme.tenant, role))
    theirs = never_at_twilio(world.globex)

    assert client.get(url("change", theirs.pk)).status_code == 404
    assert client.post(url("change", theirs.pk), {"amount_minor": "1", "status": "succeeded"}).status_code == 404
    assert client.post(url("change", theirs.pk), {"_cancel_session": "1"}).status_code == 404
    assert client.get(url("delete", theirs.pk)).status_code == 404
    assert client.post(url("delete", theirs.pk), {"post": "yes"}).status_code == 404
    assert client.get(url("history", theirs.pk)).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.status, theirs.amount_minor) == ("created", 1250)


def test_staff_without_membership_sees_no_sessions(world, client):
    session(world.acme)
    client.force_login(UserFactory())

    assert client.get(url("changelist")).status_code == 403


# --- Search and filters ----------------------------------------------------------------


@pytest.fixture
def searchable(world):
    target = session(
        world.acme, card_last4="4242", payment_confirmation_code="pi_3TargetCode", parameter={"reference": "INV-2041"}
    )
    other = session(
        world.acme, card_last4="1111", payment_confirmation_code="pi_3OtherCode", parameter={"reference": "INV-2042"}
    )
    # Another tenant's session that matches every term must stay invisible.
    session(
        world.globex,
        call_sid=target.call_sid,
        payment_sid=target.payment_sid[:20] + "0" * 14,
        card_last4="4242",
        payment_confirmation_code="pi_3TargetCode",
        parameter={"reference": "INV-2041"},
    )
    return target, other


@pytest.mark.parametrize(
    "term",
    [
        lambda s: str(s.uuid),
        lambda s: str(s.uuid).upper(),
        lambda s: s.call_sid,
        lambda s: s.call_sid[:12],
        lambda s: s.payment_sid,
        lambda s: s.payment_sid[:20],  # a prefix, as pasted from a truncated log line
        lambda s: f"  {s.payment_sid}  ",
        lambda s: "4242",
        lambda s: "pi_3TargetCode",
        lambda s: "pi_3Target",
        lambda s: "INV-2041",
    ],
    ids=[
        "uuid",
        "uuid-upper-case",
        "call-sid",
        "call-sid-prefix",
        "payment-sid",
        "payment-sid-prefix",
        "payment-sid-with-spaces",
        "last4",
        "confirmation-code",
        "confirmation-code-prefix",
        "reference",
    ],
)
def test_search_finds_the_session_by_each_identifier(world, as_acme_owner, searchable, term):
    target, _ = searchable

    response = as_acme_owner.get(url("changelist"), {"q": term(target)})

    assert listed(response) == {target.pk}


@pytest.mark.parametrize("term", ["INV-20", "424", "00000000-0000-0000-0000-000000000000", "PKnothex"])
def test_search_finds_nothing_for_a_partial_reference_or_last4_or_an_unknown_id(world, as_acme_owner, searchable, term):
    assert listed(as_acme_owner.get(url("changelist"), {"q": term})) == set()


def test_superuser_search_by_last4_finds_it_in_every_tenant(world, as_superuser, searchable):
    target, _ = searchable

    found = listed(as_superuser.get(url("changelist"), {"q": "4242"}))

    assert target.pk in found and len(found) == 2


def test_filters_by_status_channel_environment_result_and_date(world, as_acme_owner):
    charged = session(world.acme, "Stripe_Prod", status="succeeded", result="success")
    ivr = session(world.acme, "Stripe_Dev", channel="ivr")
    old = session(world.acme, "Stripe_Stage", status="expired")
    PaySession.objects.filter(pk=old.pk).update(created_at=datetime(2024, 1, 15, 12, tzinfo=UTC))
    session(world.globex, "Stripe_Prod", status="succeeded", channel="ivr", result="success")

    def filtered(**params) -> set[int]:
        return listed(as_acme_owner.get(url("changelist"), params))

    assert filtered(status__exact="succeeded") == {charged.pk}
    assert filtered(channel__exact="ivr") == {ivr.pk}
    assert filtered(connector__environment__exact="production") == {charged.pk}
    assert filtered(connector=world.acme.connectors["Stripe_Dev"].pk) == {ivr.pk}
    assert filtered(result="success") == {charged.pk}
    assert filtered(created_at__gte="2024-01-01 00:00:00+00:00", created_at__lt="2024-02-01 00:00:00+00:00") == {old.pk}
    # Links made by the date bar the list used to have still work (the bar is gone: it read every row).
    assert filtered(created_at__year="2024", created_at__month="1") == {old.pk}


def test_list_shows_amount_in_major_units_and_only_the_last_digits(world, as_acme_owner):
    session(world.acme, amount_minor=1250, currency="USD", card_last4="4242", card_number_masked="xxxxxxxxxxxx4242")
    session(world.acme, amount_minor=1250, currency="JPY")
    session(world.acme, amount_minor=None, token_type="")
    session(world.acme, amount_minor=500, payment_method="ach-debit", bank_account_last2="92")

    content = as_acme_owner.get(url("changelist")).content.decode()

    assert "12.50 USD" in content
    assert "1250 JPY" in content
    assert "Tokenize (reusable)" in content
    assert "…4242" in content
    assert "…92" in content
    assert "xxxxxxxxxxxx4242" not in content  # the list shows the last 4, not the mask


# --- The detail page: read-only, with the event timeline -------------------------------


def _event(s, kind: str, direction: str = "in", **fields) -> PayEvent:
    fields.setdefault("tenant", s.tenant)
    return PayEvent.objects.create(session=s, kind=kind, direction=direction, dedupe_key=uuid.uuid4().hex, **fields)


def _callback(s, **params) -> None:
    base = {"AccountSid": s.tenant.twilio_account_sid, "CallSid": s.call_sid, "Sid": s.payment_sid}
    pay_callback_record(tenant_id=s.tenant_id, session_id=s.pk, raw_params={**base, **params})


@pytest.fixture
def with_timeline(world, django_capture_on_commit_callbacks):
    s = session(world.acme, amount_minor=1250)
    create = {"charge_amount": "12.50", "currency": "USD", "payment_connector": "Stripe_Dev"}
    _event(s, "create", "out", payload=create, response={"sid": s.payment_sid}, http_status=201)
    capture = {"capture": "payment-card-number"}
    _event(s, "capture", "out", payload=capture, response={"sid": s.payment_sid}, http_status=202)
    with django_capture_on_commit_callbacks(execute=True):  # the apply task runs, as in production
        _callback(
            s,
            Capture="payment-card-number",
            PaymentCardNumber="xxxxxxxxxxxx4242",
            PaymentCardType="visa",
            Required="ExpirationDate,SecurityCode,PostalCode",
            DateUpdated="2025-01-01T10:00:01Z",
        )
        _callback(
            s,
            Result="payment-connector-error",
            PayErrorCode="64012",
            PaymentError="<script>alert('x')</script> declined",
            DateUpdated="2025-01-01T10:00:02Z",
        )
    return s


def test_detail_page_shows_the_event_timeline_in_order_with_masked_values(world, as_acme_owner, with_timeline):
    s = with_timeline

    response = as_acme_owner.get(url("change", s.pk))

    assert response.status_code == 200
    content = response.content.decode()
    steps = [
        "→ Twilio (create)",
        "charge_amount=12.50 · currency=USD",
        "→ Twilio (capture)",
        '<td class="nowrap">payment-card-number</td>',
        "← Twilio (status-callback)",
        "Required=ExpirationDate,SecurityCode,PostalCode · PaymentCardNumber=xxxxxxxxxxxx4242",
        "Result=payment-connector-error · PayErrorCode=64012",
    ]
    timeline = content[content.index('class="pay-event-timeline"') :]
    positions = [timeline.find(step) for step in steps]
    assert -1 not in positions, dict(zip(steps, positions, strict=True))
    assert positions == sorted(positions)
    assert "4242424242424242" not in content
    # Every event was applied, and the applied time is shown (no "—" in an inbound row's Applied cell).
    assert PayEvent.objects.filter(session=s, direction="in", applied_at__isnull=True).count() == 0
    # Payload text is escaped, never rendered as markup.
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; declined" in content
    assert "<script>alert(" not in content


def test_timeline_shows_late_events_and_outbound_errors(world, as_acme_owner):
    s = session(world.acme, status="cancelled")
    unreachable = {"error": "Twilio unreachable: ConnectionError", "permanent": False}
    _event(s, "cancel", "out", payload={"status": "cancel"}, response=unreachable)
    _event(s, "status-callback", payload={"Result": "success"}, late=True)

    content = as_acme_owner.get(url("change", s.pk)).content.decode()

    assert "error=Twilio unreachable: ConnectionError" in content
    assert '<tr class="late">' in content
    assert 'Result=success <span class="quiet">(arrived after the session ended: kept, not applied)</span>' in content


def test_timeline_shows_only_events_of_the_sessions_tenant(world, as_acme_owner):
    s = session(world.acme)
    _event(s, "status-callback", payload={"Capture": "expiration-date", "ErrorType": "input-timeout"})
    # An inconsistent row (another tenant's event pointing at this session) must not show.
    _event(s, "status-callback", tenant=world.globex.tenant, payload={"Capture": "security-code", "ErrorType": "Gx"})

    content = as_acme_owner.get(url("change", s.pk)).content.decode()

    assert (
        '<td class="nowrap">expiration-date</td>'
        '<td class="what">Twilio asks for expiration-date · ErrorType=input-timeout</td>' in content
    )
    assert "ErrorType=Gx" not in content


def test_detail_page_groups_fields_and_shows_masked_card_values(world, as_acme_owner):
    s = session(
        world.acme,
        card_number_masked="xxxxxxxxxxxx4242",
        card_last4="4242",
        card_type="visa",
        twilio_error_code="64021",
        twilio_error_message="Another payment is in progress",
    )

    response = as_acme_owner.get(url("change", s.pk))

    content = response.content.decode()
    titles = [name for name, _ in response.context["adminform"].fieldsets]
    assert titles == [
        None,  # the summary
        "Reconciliation with Stripe",
        "Refunds",
        "Event timeline",
        "Request parameters",
        "Progress and masked values",
        "Outcome fields and times",
    ]
    classes = [fs.classes for fs in response.context["adminform"]]
    assert classes[-3:] == ["collapse"] * 3 and "collapse" not in classes[:-3]  # the outcome first, unfolded
    assert "Visa •••• 4242" in content
    assert "xxxxxxxxxxxx4242" in content
    assert "12.50 USD" in content
    assert "Another payment is in progress" in content
    assert s.callback_token not in content  # part of the callback URL: not for display


@pytest.mark.parametrize("who", ["owner", "superuser"])
def test_sessions_are_read_only_even_for_superusers(world, client, superuser, who):
    client.force_login(world.acme.owner if who == "owner" else superuser)
    s = session(world.acme, amount_minor=1250)

    page = client.get(url("change", s.pk))
    posted = client.post(url("change", s.pk), {"amount_minor": "1", "status": "succeeded", "_save": "Save"})

    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert b'name="amount_minor"' not in page.content
    assert posted.status_code == 403
    s.refresh_from_db()
    assert (s.amount_minor, s.status) == (1250, "created")
    assert client.get(url("add")).status_code == 403
    assert client.get(url("delete", s.pk)).status_code == 403
    assert client.post(url("delete", s.pk), {"post": "yes"}).status_code == 403
    assert PaySession.objects.filter(pk=s.pk).exists()
    assert b'value="delete_selected"' not in client.get(url("changelist")).content


# --- Cancelling -------------------------------------------------------------------------


def _start_on_a_call(desk, api_for) -> PaySession:
    """Start a session as a partner app does (the public API → the simulator)."""
    api = api_for(desk.world.acme.raw_key)
    body = {"call_sid": "CA" + secrets.token_hex(16), "connector": "Stripe_Dev", "charge_amount": "5.00"}
    response = api.post("/api/v1/pay-sessions/", body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert response.status_code == 201, response.json()
    assert all(cb["status"] == 204 for cb in desk.sim.flush())
    return PaySession.objects.get(uuid=response.json()["id"])


@pytest.mark.django_db(transaction=True)
def test_cancel_action_cancels_at_twilio_and_ends_the_session(desk, api_for, client):
    live = _start_on_a_call(desk, api_for)
    finished = session(desk.world.acme, status="succeeded")
    client.force_login(desk.world.acme.owner)

    response = client.post(url("changelist"), action("cancel_selected", live.pk, finished.pk))

    assert response.status_code == 302
    assert all(cb["status"] == 204 for cb in desk.sim.flush())
    sent = desk.sim.requests()[-1]
    assert sent["form"]["Status"] == "cancel"
    assert live.payment_sid in sent["path"]
    live.refresh_from_db()
    assert live.status == "cancelled" and live.completed_at is not None
    assert PayEvent.objects.filter(session=live, direction="out", kind="cancel", http_status=202).count() == 1
    assert PaySession.objects.get(pk=finished.pk).status == "succeeded"
    assert ("success", "1 session(s) cancelled.") in messages_of(response)
    assert ("warning", "1 session(s) skipped: already ended.") in messages_of(response)


@pytest.mark.parametrize("role", [Role.AGENT, Role.ADMIN])
def test_agents_and_admins_may_cancel(world, client, role):
    client.force_login(member(world.acme.tenant, role))
    s = never_at_twilio(world.acme)

    assert b'value="cancel_selected"' in client.get(url("changelist")).content
    client.post(url("changelist"), action("cancel_selected", s.pk))

    assert PaySession.objects.get(pk=s.pk).status == "cancelled"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.FINANCE])
def test_viewers_and_finance_cannot_cancel(world, client, role):
    client.force_login(member(world.acme.tenant, role))
    s = never_at_twilio(world.acme)

    page = client.get(url("changelist"))
    client.post(url("changelist"), action("cancel_selected", s.pk))
    detail = client.get(url("change", s.pk))
    button = client.post(url("change", s.pk), {"_cancel_session": "1"})

    assert page.status_code == 200 and s.pk in listed(page)
    assert b'value="cancel_selected"' not in page.content
    assert b'name="_cancel_session"' not in detail.content
    assert button.status_code == 403
    assert PaySession.objects.get(pk=s.pk).status == "created"


def test_cancel_action_ignores_forged_ids_of_another_tenants_sessions(world, as_acme_owner):
    mine, theirs = never_at_twilio(world.acme), never_at_twilio(world.globex)

    as_acme_owner.post(url("changelist"), action("cancel_selected", mine.pk, theirs.pk))
    as_acme_owner.post(url("changelist"), action("cancel_selected", theirs.pk))

    assert PaySession.objects.get(pk=mine.pk).status == "cancelled"
    assert PaySession.objects.get(pk=theirs.pk).status == "created"


def test_cancel_action_skips_sessions_the_user_may_only_view(world, client):
    owner = world.acme.owner
    MembershipFactory(user=owner, tenant=world.globex.tenant, role=Role.VIEWER)
    mine, viewed = never_at_twilio(world.acme), never_at_twilio(world.globex)
    client.force_login(owner)

    response = client.post(url("changelist"), action("cancel_selected", mine.pk, viewed.pk))

    assert PaySession.objects.get(pk=mine.pk).status == "cancelled"
    assert PaySession.objects.get(pk=viewed.pk).status == "created"
    assert ("warning", "1 session(s) skipped: you may only view them.") in messages_of(response)
    assert client.post(url("change", viewed.pk), {"_cancel_session": "1"}).status_code == 403
    assert PaySession.objects.get(pk=viewed.pk).status == "created"


def test_a_refusal_is_reported_and_the_other_sessions_are_still_cancelled(world, as_acme_owner):
    # Created on both sides of the failing one, so one comes after it whatever the order.
    first = never_at_twilio(world.acme)
    unreachable = session(world.acme)  # started at Twilio; the test settings point Twilio at a closed port
    last = never_at_twilio(world.acme)

    response = as_acme_owner.post(url("changelist"), action("cancel_selected", first.pk, unreachable.pk, last.pk))

    assert PaySession.objects.get(pk=first.pk).status == "cancelled"
    assert PaySession.objects.get(pk=last.pk).status == "cancelled"
    assert PaySession.objects.get(pk=unreachable.pk).status == "created"
    errors = [text for level, text in messages_of(response) if level == "error"]
    assert len(errors) == 1
    assert str(unreachable.uuid) in errors[0] and "Twilio unreachable" in errors[0]
    assert ("success", "2 session(s) cancelled.") in messages_of(response)


def test_cancel_button_on_the_detail_page(world, as_acme_owner):
    s, ended = never_at_twilio(world.acme), session(world.acme, status="failed")

    assert b'name="_cancel_session"' in as_acme_owner.get(url("change", s.pk)).content
    assert b'name="_cancel_session"' not in as_acme_owner.get(url("change", ended.pk)).content

    response = as_acme_owner.post(url("change", s.pk), {"_cancel_session": "Cancel this session"})

    assert response.status_code == 302
    assert PaySession.objects.get(pk=s.pk).status == "cancelled"
    assert ("success", "The session is cancelled.") in messages_of(response)

    again = as_acme_owner.post(url("change", s.pk), {"_cancel_session": "Cancel this session"})

    assert ("error", "The session was not cancelled: The session has ended (cancelled).") in messages_of(again)


# --- Outcome first, found by any id --------------------------------------------------------


def test_the_page_opens_with_the_outcome_in_words_and_the_stripe_link_of_the_connectors_mode(world, as_acme_owner):
    s = session(
        world.acme,
        connector="Stripe_Dev",
        amount_minor=1250,
        status="failed",
        result="payment-connector-error",
        payment_error="Your card was declined.",
        pay_error_code="64012",
        payment_confirmation_code="pi_3Declined",
        card_last4="0002",
        card_type="visa",
        card_expiration="1229",
    )

    content = as_acme_owner.get(url("change", s.pk)).content.decode()

    summary = content[content.index('class="pay-summary"') : content.index("Request parameters")]
    assert "Failed" in summary and "12.50 USD" in summary and "Visa •••• 0002, expires 12/29" in summary
    assert "Declined by the payment processor: Your card was declined. (error 64012)" in summary
    assert 'href="https://dashboard.stripe.com/test/payments/pi_3Declined"' in summary
    assert "Reconciliation" in summary and "not checked yet" in summary
    assert "<th>Started by</th>" in summary


def test_times_on_the_page_have_seconds_in_the_tenants_time_zone(world, as_acme_owner):
    world.acme.tenant.time_zone = "America/New_York"
    world.acme.tenant.save()
    s = session(world.acme)
    PaySession.objects.filter(pk=s.pk).update(created_at=datetime(2025, 1, 15, 15, 4, 5, tzinfo=UTC))

    content = as_acme_owner.get(url("change", s.pk)).content.decode()

    assert "2025-01-15 10:04:05 EST" in content


def test_a_session_is_found_by_its_uuid_in_the_search_box_and_by_url(world, as_acme_owner):
    s, other = session(world.acme), session(world.acme)

    found = as_acme_owner.get(url("changelist"), {"q": str(s.uuid)})
    assert [row.pk for row in found.context["cl"].result_list] == [s.pk]
    by_reference = as_acme_owner.get(url("changelist"), {"q": f"Paydesk {s.uuid}"}).context["cl"].result_list
    assert [row.pk for row in by_reference] == [s.pk]

    page = as_acme_owner.get(url("change", s.uuid))
    assert page.status_code == 200 and page.context["original"] == s
    assert as_acme_owner.get(f"/admin/payments/paysession/{s.uuid}/", follow=True).context["original"] == s
    assert other.pk != s.pk


def test_another_tenants_session_is_404_by_uuid_and_not_found_by_search(world, as_acme_owner):
    theirs = session(world.globex)

    assert as_acme_owner.get(url("change", theirs.uuid)).status_code == 404
    assert list(as_acme_owner.get(url("changelist"), {"q": str(theirs.uuid)}).context["cl"].result_list) == []


@pytest.mark.parametrize("field", ["call_sid", "payment_sid", "card_last4", "payment_confirmation_code"])
def test_one_search_box_finds_a_session_by_each_id(world, as_acme_owner, field):
    s = session(world.acme, card_last4="4242", payment_confirmation_code="pi_3Found")
    session(world.acme, card_last4="1111", payment_confirmation_code="pi_3Other")

    found = as_acme_owner.get(url("changelist"), {"q": getattr(s, field)}).context["cl"].result_list
    assert [row.pk for row in found] == [s.pk]


def test_channel_reads_ivr_not_ivr_in_title_case(world, as_acme_owner):
    s = session(world.acme, channel="ivr")
    assert ">IVR<" in as_acme_owner.get(url("changelist")).content.decode()
    assert "IVR · connector" in as_acme_owner.get(url("change", s.pk)).content.decode()
