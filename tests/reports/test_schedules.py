"""Scheduled delivery by email: slots in the tenant's time zone, one email per slot, the
report of the right days attached (or linked when large)."""

from datetime import UTC, datetime, time
from decimal import Decimal

import pytest
from django.core import mail

from payments.reports import delivery
from payments.reports.models import ReportDelivery, ReportSchedule, SavedReport
from tenants.models import AuditEvent
from tenants.services import Actor
from tests.reports.conftest import at, parse_csv, session, stripe_payment

pytestmark = pytest.mark.django_db


@pytest.fixture
def ny(world):
    world.acme.tenant.time_zone = "America/New_York"
    world.acme.tenant.save()
    return world.acme


def schedule_for(tw, *, kind="daily_summary", fmt="csv", period="yesterday", cadence="daily", weekday=None, at_=7):
    report = SavedReport.objects.create(tenant=tw.tenant, name=f"{kind} {fmt}", kind=kind, format=fmt, period=period)
    schedule = ReportSchedule(
        tenant=tw.tenant,
        saved_report=report,
        name="Morning",
        recipients="cfo@example.com, books@example.com",
        cadence=cadence,
        weekday=weekday,
        local_time=time(at_, 0),
    )
    return delivery.report_schedule_save(schedule=schedule, actor=Actor.system("test"))


def test_the_next_slot_is_the_local_time_in_the_tenant_zone_across_dst(ny):
    schedule = ReportSchedule(tenant=ny.tenant, cadence="daily", local_time=time(7, 0))
    weekly = ReportSchedule(tenant=ny.tenant, cadence="weekly", weekday=0, local_time=time(7, 0))

    assert delivery.next_run(schedule, after=at("2025-03-08 13:00")) == at("2025-03-09 11:00")  # EDT starts 9 March
    assert delivery.next_run(schedule, after=at("2025-03-07 12:00")) == at("2025-03-08 12:00")  # still EST
    assert delivery.next_run(weekly, after=at("2025-03-08 13:00")) == at("2025-03-10 11:00")  # Monday


def test_a_due_schedule_emails_yesterday_summary_once(ny, django_capture_on_commit_callbacks, settings):
    settings.DEFAULT_FROM_EMAIL = "reports@paydesk.test"
    schedule = schedule_for(ny)
    slot = at("2025-03-02 12:00")  # 07:00 in New York on 2 March: yesterday is 1 March
    ReportSchedule.objects.filter(pk=schedule.pk).update(next_run_at=slot)
    s = session(ny, when=at("2025-03-02 04:30"), amount_minor=2000)  # 23:30 on 1 March
    stripe_payment(s, fee=88)
    session(ny, when=at("2025-03-02 05:30"), amount_minor=999)  # 2 March: not in the report

    with django_capture_on_commit_callbacks(execute=True):
        assert delivery.report_deliveries_enqueue(now=at("2025-03-02 12:03")) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert delivery.report_deliveries_enqueue(now=at("2025-03-02 12:08")) == 0  # that slot is done

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["cfo@example.com", "books@example.com"] and message.from_email == "reports@paydesk.test"
    assert "2025-03-01" in message.subject and "USD: 1 sessions" in message.body
    name, body, mimetype = message.attachments[0]
    assert name.endswith(".csv") and mimetype.startswith("text/csv")
    rows = parse_csv(body.encode() if isinstance(body, str) else body)
    assert [(r["Date (local)"], r["Sessions"], r["Gross"], r["Stripe fees"]) for r in rows] == [
        ("2025-03-01", "1", "20.00", "0.88")
    ]
    assert ReportDelivery.objects.get().status == "sent"
    schedule.refresh_from_db()
    assert schedule.next_run_at == at("2025-03-03 12:00")
    assert AuditEvent.objects.filter(action="report.delivered", tenant=ny.tenant).count() == 1


def test_a_large_report_is_sent_as_an_expiring_link(ny, settings, django_capture_on_commit_callbacks):
    settings.PAYDESK_REPORTS_EMAIL_ATTACH_MAX_BYTES = 10
    schedule = schedule_for(ny, kind="payments", period="yesterday")
    ReportSchedule.objects.filter(pk=schedule.pk).update(next_run_at=at("2025-03-02 12:00"))
    session(ny, when=at("2025-03-01 15:00"))

    with django_capture_on_commit_callbacks(execute=True):
        delivery.report_deliveries_enqueue(now=at("2025-03-02 12:00"))

    message = mail.outbox[0]
    assert message.attachments == [] and "http://testserver/reports/download/" in message.body


def test_a_failed_send_is_recorded_and_retried_by_the_task(ny, monkeypatch):
    schedule = schedule_for(ny)
    item = ReportDelivery.objects.create(
        tenant=ny.tenant, schedule=schedule, due_at=datetime(2025, 3, 2, tzinfo=UTC), recipients=schedule.recipients
    )

    def refuse(self, fail_silently=False):
        raise OSError("SMTP down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    with pytest.raises(OSError):
        delivery.report_delivery_send(tenant_id=ny.tenant.pk, delivery_id=item.pk)
    item.refresh_from_db()
    assert (item.status, item.attempts, item.error) == ("failed", 1, "SMTP down")

    monkeypatch.undo()
    assert delivery.report_delivery_send(tenant_id=ny.tenant.pk, delivery_id=item.pk) == "sent"
    assert len(mail.outbox) == 1


def test_a_delivery_is_never_sent_for_another_tenant_id(world, ny):
    schedule = schedule_for(ny)
    item = ReportDelivery.objects.create(
        tenant=ny.tenant, schedule=schedule, due_at=datetime(2025, 3, 2, tzinfo=UTC), recipients=schedule.recipients
    )

    assert delivery.report_delivery_send(tenant_id=world.globex.tenant.pk, delivery_id=item.pk) == "skipped"
    assert mail.outbox == []


def test_a_schedule_refuses_another_tenant_report_and_bad_addresses(world, ny):
    other = SavedReport.objects.create(tenant=world.globex.tenant, name="theirs")
    schedule = ReportSchedule(tenant=ny.tenant, saved_report=other, name="x", recipients="  ", local_time=time(7))

    with pytest.raises(Exception) as refused:
        delivery.report_schedule_save(schedule=schedule, actor=Actor.system("test"))

    assert set(refused.value.message_dict) == {"saved_report", "recipients"}


def test_the_summary_in_the_mail_matches_the_attachment(ny, django_capture_on_commit_callbacks):
    schedule = schedule_for(ny)
    ReportSchedule.objects.filter(pk=schedule.pk).update(next_run_at=at("2025-03-02 12:00"))
    for amount in (1000, 2500):
        stripe_payment(session(ny, when=at("2025-03-01 15:00"), amount_minor=amount), fee=10)

    with django_capture_on_commit_callbacks(execute=True):
        delivery.report_deliveries_enqueue(now=at("2025-03-02 12:00"))

    message = mail.outbox[0]
    rows = parse_csv(message.attachments[0][1].encode())
    assert sum(Decimal(r["Gross"]) for r in rows) == Decimal("35.00")
    assert "gross 35.00" in message.body and "net 34.80" in message.body
