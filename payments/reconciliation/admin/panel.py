"""The reconciliation panel of the pay-session page (registered on it by ReconciliationConfig.ready())."""

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.money import to_major_string
from payments.reconciliation.admin.common import external_link
from payments.reconciliation.items import stripe_dashboard_url
from payments.reconciliation.models import ReconciliationItem, SessionReconciliation


def _money(amount_minor: int | None, currency: str) -> str:
    return "—" if amount_minor is None else f"{to_major_string(amount_minor, currency)} {currency}"


def _local(value) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S %Z}" if value else "—"


def reconciliation_state(session) -> str:
    """The summary line at the top of the pay-session page: the state, linked to the panel."""
    record = SessionReconciliation.objects.filter(session=session, tenant_id=session.tenant_id).first()
    if record is None:
        return mark_safe('<a href="#reconciliation">not checked yet</a>')  # noqa: S308 - a constant
    return format_html(
        '<a href="#reconciliation" class="reconciliation-state reconciliation-{}">{}</a>',
        record.state,
        record.get_state_display(),
    )


def reconciliation_panel(session) -> str:
    """HTML for the pay-session page: the session's reconciliation state, what Stripe
    holds for it (with dashboard links), its fee, net and payout, its exception items and
    a "reconcile now" link. Everything shown is the session's own tenant's."""
    record = SessionReconciliation.objects.filter(session=session, tenant_id=session.tenant_id).first()
    mode = session.connector.mode
    reconcile_url = reverse("admin:reconciliation_connector_reconcile", args=[session.connector_id])
    back = reverse("admin:payments_paysession_change", args=[session.pk])
    action = format_html('<a class="button" href="{}?next={}">Reconcile now</a>', reconcile_url, back)
    if record is None:
        return format_html("<p>Not checked against Stripe yet.</p>{}", action)
    # Stripe reports the fee and net in the settlement currency; a session charges in one.
    currency = (record.stripe_currency or session.currency).upper()
    rows = [
        ("State", record.get_state_display()),
        ("Detail", record.detail or "—"),
        (
            "Stripe object",
            external_link(stripe_dashboard_url(mode=mode, object_id=record.stripe_object_id), record.stripe_object_id),
        ),
        ("Charge", external_link(stripe_dashboard_url(mode=mode, object_id=record.charge_id), record.charge_id)),
        ("Stripe amount", _money(record.stripe_amount, currency)),
        ("Refunded", _money(record.amount_refunded, currency) if record.amount_refunded else "—"),
        (
            "Fee / net",
            f"{_money(record.fee, currency)} / {_money(record.net, currency)}" if record.fee is not None else "—",
        ),
        ("Available on", _local(record.available_on)),
        ("Payout", external_link(stripe_dashboard_url(mode=mode, object_id=record.payout_id), record.payout_id)),
        ("Checked", _local(record.checked_at)),
    ]
    items = ReconciliationItem.objects.filter(session=session, tenant_id=session.tenant_id).order_by("-opened_at")
    item_rows = format_html_join(
        "",
        '<li><a href="{}">{}</a> ({}) {}</li>',
        (
            (
                reverse("admin:reconciliation_reconciliationitem_change", args=[i.pk]),
                i.get_reason_display(),
                "open" if i.is_open else "resolved",
                i.detail,
            )
            for i in items
        ),
    )
    return format_html(
        '<table class="reconciliation-panel" id="reconciliation">{}</table><p>Exceptions:</p><ul>{}</ul>{}',
        format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        item_rows or mark_safe("<li>none</li>"),  # noqa: S308 - a constant
        action,
    )
