"""Refunds in the admin: the refunds list (read-only, scoped to the user's tenants), and
the refund form of the pay-session page with its confirmation step.

The form sits on the pay-session page (registered by RefundsConfig.ready() through
payments.sessions.extensions), shown only to the roles that may refund: owner, admin and
finance. Its button posts to this app's own view (`formaction`), which asks for
confirmation and then refunds through payments.refunds.services; money is never edited
by hand here.
"""

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from config.errors import ServiceError
from connectors.models import stripe_dashboard_url
from core import money
from payments.refunds import selectors, services
from payments.refunds.models import Refund
from payments.sessions.admin import ConnectorFilter
from payments.sessions.models import PaySession
from tenants.admin_scoping import ReadOnlyAdminMixin, TenantScopedAdminMixin, admin_actor, tenant_ids
from tenants.models import Role

# Refunding sends money back: the roles that handle money. Agents run calls and viewers
# look; neither ever sees the form.
REFUND_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.FINANCE})


def may_refund(request, session: PaySession) -> bool:
    return request.user.is_superuser or session.tenant_id in tenant_ids(request, REFUND_ROLES)


def _major(amount_minor: int, currency: str) -> str:
    return f"{money.to_major_string(amount_minor, currency)} {currency}"


def _link(url: str, text: str):
    return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, text) if url else text or "—"


# --- The form and its confirmation -------------------------------------------------------


class RefundForm(forms.Form):
    """The refund form of the pay-session page (prefix "refund": its inputs travel with
    the page's own form) and of its confirmation step."""

    amount = forms.CharField(
        max_length=32, help_text="What remains is prefilled; a smaller amount is a partial refund."
    )
    reason = forms.ChoiceField(choices=[("", "—")] + list(Refund.Reason.choices), required=False)
    note = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 40}))
    token = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, session: PaySession, **kwargs):
        self.session = session
        super().__init__(*args, prefix="refund", **kwargs)

    def clean_amount(self):
        amount = money.parse_major(self.cleaned_data["amount"], self.session.currency)
        if amount <= 0:
            raise forms.ValidationError("The amount must be positive.")
        return amount

    def as_rows(self):
        """The fields as rows of a small table: label, input, help, errors."""
        rows = []
        for name in ("amount", "reason", "note"):
            field = self[name]
            label = f"{field.label} ({self.session.currency})" if name == "amount" else field.label
            rows.append(
                format_html(
                    "<tr><th>{}</th><td>{}{}{}</td></tr>",
                    field.label_tag(label_suffix="", contents=label),
                    field,
                    format_html('<div class="help">{}</div>', field.help_text) if field.help_text else "",
                    field.errors,
                )
            )
        return format_html_join("", "{}", ((row,) for row in rows))

    def refund_request(self) -> services.RefundRequest:
        data = self.cleaned_data
        return services.RefundRequest(amount_minor=data["amount"], reason=data["reason"], note=data["note"])


def refunds_panel(request, session: PaySession) -> str:
    """The pay-session page's "Refunds" section: the session's refunds, what remains, and
    (for owner, admin and finance, when something can be refunded) the refund form."""
    totals = selectors.refund_totals([session])[session.pk]
    refunds = list(selectors.session_refunds(tenant=session.tenant, session=session))
    mode = session.connector.mode
    rows = format_html_join(
        "",
        '<tr><td class="nowrap">{}</td><td class="nowrap">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
        "<td>{}</td></tr>",
        (
            (
                format_html(
                    '<a href="{}">{}</a>',
                    reverse("admin:refunds_refund_change", args=[r.pk]),
                    f"{r.created_at:%Y-%m-%d %H:%M:%S}",
                ),
                _major(r.amount_minor, r.currency),
                r.status + (f": {r.failure_reason}" if r.failure_reason else ""),
                r.get_reason_display() or "—",
                r.note or "—",
                r.get_origin_display() if r.made_outside_paydesk else r.requested_by,
                _link(stripe_dashboard_url(mode=mode, object_id=r.stripe_refund_id), r.stripe_refund_id),
            )
            for r in refunds
        ),
    )
    table = (
        format_html(
            '<table class="refunds-panel"><thead><tr><th>Asked</th><th>Amount</th><th>Status</th><th>Reason</th>'
            "<th>Note</th><th>By</th><th>Stripe refund</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
        if refunds
        else mark_safe("<p>No refunds.</p>")  # noqa: S308 - a constant
    )
    if session.amount_minor is None:
        return format_html("{}<p>{}</p>", table, totals.problem)
    summary = format_html(
        '<p class="refunds-summary">Paid {} · refunded {} · pending {} · <strong>{} can be refunded</strong></p>',
        _major(session.amount_minor, session.currency),
        _major(totals.refunded, session.currency),
        _major(totals.pending, session.currency),
        _major(totals.refundable, session.currency),
    )
    if not may_refund(request, session):
        return format_html("{}{}", summary, table)
    if totals.problem or totals.refundable <= 0:
        why = totals.problem or "Nothing is left to refund."
        return format_html('{}{}<p class="refunds-unavailable">{}</p>', summary, table, why)
    form = RefundForm(session=session, initial={"amount": money.to_major_string(totals.refundable, session.currency)})
    action = reverse("admin:refunds_refund_session", args=[session.pk])
    return format_html(
        '{}{}<div class="refund-form"><h3>Refund this payment</h3><table class="refund-form-fields">{}</table>'
        '<p><button type="submit" class="button default" name="refund-review" formaction="{}" formnovalidate>'
        "Review refund…</button> The next page asks you to confirm.</p></div>",
        summary,
        table,
        form.as_rows(),
        action,
    )


# --- The refunds list ----------------------------------------------------------------------


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "tenant",
        "session_link",
        "connector",
        "amount",
        "status",
        "reason",
        "origin",
        "requested_by",
        "stripe_refund_id",
        "refunded_at",
    ]
    list_filter = ["status", "origin", "reason", ConnectorFilter, "created_at"]
    list_select_related = ["tenant", "connector", "session"]
    date_hierarchy = "created_at"
    search_fields = ["stripe_refund_id__startswith", "requested_by__startswith"]
    search_help_text = "Stripe refund id (re_…) or who asked (user:…, api_key:…)."
    show_full_result_count = False
    fields = [
        "uuid",
        "tenant",
        "session_link",
        "connector",
        "amount",
        "reason",
        "note",
        "origin",
        "status",
        "failure_reason",
        "stripe_refund_id",
        "refunded_at",
        "requested_by",
        "created_at",
        "updated_at",
        "completed_at",
        "next_check_at",
    ]
    readonly_fields = fields

    @admin.display(description="Amount", ordering="amount_minor")
    def amount(self, obj):
        return _major(obj.amount_minor, obj.currency)

    @admin.display(description="Pay session")
    def session_link(self, obj):
        url = reverse("admin:payments_paysession_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, obj.session.uuid)

    def get_urls(self):
        view = self.admin_site.admin_view(self.session_refund_view)
        return [path("session/<int:session_pk>/", view, name="refunds_refund_session"), *super().get_urls()]

    def session_refund_view(self, request, session_pk: int):
        """The refund of one pay session: the form (GET, or with errors), its confirmation
        (POST), then the refund (POST with `refund-confirm`), back on the session's page."""
        sessions = PaySession.objects.select_related("tenant", "connector")
        if not request.user.is_superuser:
            sessions = sessions.filter(tenant_id__in=tenant_ids(request))
        session = sessions.filter(pk=session_pk).first()
        if session is None:
            raise Http404("No such object.")
        if not may_refund(request, session):
            raise PermissionDenied
        back = reverse("admin:payments_paysession_change", args=[session.pk])
        totals = selectors.refund_totals([session])[session.pk]
        initial = {"amount": money.to_major_string(totals.refundable, session.currency) if session.amount_minor else ""}
        form = RefundForm(request.POST if request.method == "POST" else None, session=session, initial=initial)
        confirming = False
        if request.method == "POST" and form.is_valid() and "refund-edit" not in request.POST:
            if "refund-confirm" in request.POST and form.cleaned_data["token"]:
                return self._refund(request, session, form, back)
            confirming = True
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "session": session,
            "totals": totals,
            "form": form,
            "confirming": confirming,
            "token": uuid.uuid4().hex,
            "amount": _major(form.cleaned_data["amount"], session.currency) if confirming else "",
            "reason": Refund.Reason(form.cleaned_data["reason"]).label
            if confirming and form.cleaned_data["reason"]
            else "",
            "paid": _major(session.amount_minor or 0, session.currency),
            "refundable": _major(totals.refundable, session.currency),
            "back": back,
            "title": "Confirm the refund" if confirming else "Refund a payment",
        }
        return TemplateResponse(request, "admin/refunds/refund/session_refund.html", context)

    def _refund(self, request, session, form, back):
        try:
            refund, _ = services.refund_create(
                session=session,
                request=form.refund_request(),
                idempotency_key=f"admin-{form.cleaned_data['token']}",
                actor=admin_actor(request),
            )
        except ServiceError as error:
            self.message_user(request, f"Not refunded: {error.message}", messages.ERROR)
            return HttpResponseRedirect(back)
        amount = _major(refund.amount_minor, refund.currency)
        if refund.status == Refund.Status.SUCCEEDED:
            self.message_user(request, f"Refunded {amount} ({refund.stripe_refund_id}).", messages.SUCCESS)
        elif refund.status == Refund.Status.PENDING:
            self.message_user(
                request, f"Refund of {amount} is pending at Stripe ({refund.stripe_refund_id}).", messages.WARNING
            )
        else:
            self.message_user(request, f"Refund of {amount} {refund.status}: {refund.failure_reason}", messages.ERROR)
        return HttpResponseRedirect(back)
