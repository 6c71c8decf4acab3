"""The pay-sessions admin: a scoped, read-only view of sessions and their event timeline,
with one write, cancelling, which goes through payments.sessions.services.pay_session_cancel.

Money and state are never edited by hand, so nobody (superusers included) may add,
change or delete a session here. Cancelling is allowed to the roles that run calls.

The session page reads outcome first: a summary (status, amount, card, result in words,
confirmation code linked to Stripe, what peer apps add such as reconciliation, who
started it), the peer apps' panels, the timeline of events (one line each, times with
seconds in the tenant's time zone), and last, folded, what was asked of Twilio.
"""

import re
import uuid
import zoneinfo

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact
from django.http import Http404, HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.errors import ServiceError
from connectors.models import ConnectorInstance
from core.money import to_major_string
from payments.sessions import extensions, selectors
from payments.sessions.models import RESULTS, PayEvent, PaySession
from payments.sessions.services import pay_session_cancel
from tenants.admin_lists import ScalableListMixin, choices_filter
from tenants.admin_scoping import ReadOnlyAdminMixin, TenantScopedAdminMixin, admin_actor, tenant_ids
from tenants.models import Role

# An agent runs the calls, so an agent may end a session it sees going wrong; finance and
# viewers only look.
CANCEL_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.AGENT})

# What the timeline shows of each event's payload: the fields that tell the story.
# (The field itself, Capture or For, has a column of its own.)
_INBOUND_KEYS = (
    "Attempt",
    "Required",
    "PartialResult",
    "ErrorType",
    "PaymentCardNumber",
    "PaymentCardType",
    "ExpirationDate",
    "BankAccountNumber",
    "Result",
    "PaymentConfirmationCode",
    "PayErrorCode",
    "PaymentError",
)
_OUTBOUND_KEYS = ("charge_amount", "currency", "token_type", "payment_method", "payment_connector")


class ConnectorFilter(admin.SimpleListFilter):
    """The connectors of the user's tenants, and no others: another tenant's connector
    names must not appear even as filter choices."""

    title = "connector"
    parameter_name = "connector"

    def lookups(self, request, model_admin):
        connectors = ConnectorInstance.objects.select_related("tenant").order_by("tenant__name", "unique_name")
        if not request.user.is_superuser:
            connectors = connectors.filter(tenant_id__in=tenant_ids(request))
        connectors = list(connectors)
        several_tenants = len({c.tenant_id for c in connectors}) > 1
        return [
            (str(c.pk), f"{c.tenant.name} · {c.unique_name}" if several_tenants else c.unique_name) for c in connectors
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        # The queryset is already scoped: a forged id of another tenant's connector finds nothing.
        return queryset.filter(connector_id=int(value))


_SID = re.compile(r"(PK|CA)[0-9a-f]{0,32}")
_LAST4 = re.compile(r"[0-9]{4}")


@admin.register(PaySession)
class PaySessionAdmin(ReadOnlyAdminMixin, ScalableListMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = [
        "started",
        "tenant",
        "connector_name",
        "channel",
        "status",
        "amount",
        "card",
        "result",
        "payment_confirmation_code",
    ]
    list_filter = [
        "status",
        ConnectorFilter,
        "connector__environment",
        "channel",
        "created_at",
        choices_filter("result", RESULTS),
    ]
    # What get_search_results looks up (one index each); the list only needs it non-empty.
    search_fields = ["uuid", "payment_sid", "call_sid", "card_last4", "payment_confirmation_code", "reference"]
    search_help_text = (
        "Session ID (UUID), payment SID (PK…) or call SID (CA…), card last 4, confirmation code, or payment reference."
    )
    list_select_related = ["tenant", "connector"]
    # Newest first is what an index serves in every filter (models.PaySession.Meta.indexes).
    sortable_by = ["created_at"]

    class Media:
        css = {"all": ["payments/paysession.css"]}

    # What was asked of Twilio and the raw fields behind the summary: last, folded.
    detail_fieldsets = [
        (
            "Request parameters",
            {
                "classes": ["collapse"],
                "fields": [
                    "uuid",
                    "tenant",
                    "connector",
                    "environment",
                    "channel",
                    "call_sid",
                    "payment_sid",
                    "idempotency_key",
                    "payment_method",
                    "amount",
                    "token_type",
                    "postal_code",
                    "security_code",
                    "min_postal_code_length",
                    "valid_card_types",
                    "timeout",
                    "bank_account_type",
                    "confirmation",
                    "require_matching_inputs",
                    "description",
                    "parameter",
                ],
            },
        ),
        (
            "Progress and masked values",
            {
                "classes": ["collapse"],
                "fields": [
                    "capturing_field",
                    "required_fields",
                    "last_error_type",
                    "card_number_masked",
                    "card_type",
                    "card_expiration",
                    "postal_code_value",
                    "bank_routing_number",
                    "bank_account_last2",
                ],
            },
        ),
        (
            "Outcome fields and times",
            {
                "classes": ["collapse"],
                "fields": [
                    "result",
                    "payment_confirmation_code",
                    "payment_token",
                    "profile_id",
                    "pay_error_code",
                    "payment_error",
                    "connector_error",
                    "twilio_error_code",
                    "twilio_error_message",
                    "started_by_user",
                    "started_by_api_key",
                    "created_at",
                    "updated_at",
                    "last_activity_at",
                    "completed_at",
                ],
            },
        ),
    ]
    fieldsets = [
        (None, {"fields": ["summary"]}),
        ("Event timeline", {"fields": ["timeline"]}),
        *detail_fieldsets,
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    # Peer apps (reconciliation, refunds, reports, …) plug in their panels, forms and
    # actions through payments.sessions.extensions: this app never imports them.

    def get_list_display(self, request):
        # The tenant column only for those who see several tenants.
        if request.user.is_superuser or len(tenant_ids(request)) > 1:
            return self.list_display
        return [name for name in self.list_display if name != "tenant"]

    @property
    def actions(self):
        return ["cancel_selected", *extensions.admin_actions()]

    def _plugged(self, request) -> list[tuple[str, object]]:
        """(title, field) of every panel and form, once per request: a form is bound to the
        request, and the admin matches read-only fields by identity."""
        plugged = getattr(request, "_pay_session_plugged", None)
        if plugged is None:
            plugged = [(panel.title, panel.render) for panel in extensions.admin_panels()]
            plugged += [(form.title, form.bound(request)) for form in extensions.admin_forms()]
            request._pay_session_plugged = plugged
        return plugged

    def get_fieldsets(self, request, obj=None):
        summary, timeline, *details = self.fieldsets
        panels = [(title, {"fields": [field]}) for title, field in self._plugged(request)]
        return [summary, *panels, timeline, *details]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, *(field for _, field in self._plugged(request))]

    # --- Search: one box, each identifier on its own index ----------------------------------

    def get_search_results(self, request, queryset, search_term):
        """What a person pastes: a session's UUID, a payment SID (PK…) or call SID (CA…), whole
        or a prefix, a card's last 4, a confirmation code (whole or a prefix) or an IVR
        payment reference. Each is looked up on an index that serves it within a tenant
        (PaySession.Meta.indexes; the UUID, the SIDs and the codes are unique enough for
        their own column's index, last 4 and references are not)."""
        queryset, _ = super().get_search_results(request, queryset, "")  # the tenant scoping
        term = search_term.strip()
        if term.lower().startswith("paydesk "):  # the reference Paydesk puts in Stripe descriptions
            term = term[len("paydesk ") :].strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(uuid=uuid.UUID(term)), False
        except ValueError:
            pass
        if _SID.fullmatch(term):
            field = "payment_sid" if term.startswith("PK") else "call_sid"
            return queryset.filter(**{field if len(term) == 34 else f"{field}__startswith": term}), False
        found = Q(payment_confirmation_code__startswith=term) | Q(
            Exact(KeyTextTransform("reference", "parameter"), term)
        )
        if _LAST4.fullmatch(term):
            found |= Q(card_last4=term)
        for search in extensions.admin_searches():  # what peer apps hold (registered searches)
            extra = search(term)
            if extra is not None:
                found |= extra
        return queryset.filter(found), False

    # --- Columns --------------------------------------------------------------------------

    @admin.display(description="Started", ordering="created_at")
    def started(self, obj):
        return _when(obj.created_at)

    @admin.display(description="Connector", ordering="connector__unique_name")
    def connector_name(self, obj):
        return obj.connector.unique_name

    @admin.display(description="Environment", ordering="connector__environment")
    def environment(self, obj):
        return obj.connector.get_environment_display()

    @admin.display(description="Amount", ordering="amount_minor")
    def amount(self, obj):
        if obj.amount_minor is None:
            return f"Tokenize ({obj.token_type or PaySession.TokenType.REUSABLE})"
        return f"{to_major_string(obj.amount_minor, obj.currency)} {obj.currency}"

    @admin.display(description="Card / account")
    def card(self, obj):
        if obj.card_last4:
            return f"…{obj.card_last4}"
        if obj.bank_account_last2:
            return f"…{obj.bank_account_last2}"
        return "—"

    @admin.display(description="Summary")
    def summary(self, obj):
        rows = [
            ("Status", format_html('<span class="pay-status pay-status-{}">{}</span>', obj.status, _status_words(obj))),
            ("Amount", self.amount(obj)),
            ("Card / account", _payment_method_words(obj)),
            ("Result", _result_words(obj)),
        ]
        if obj.payment_confirmation_code:
            url = obj.connector.stripe_dashboard_url(obj.payment_confirmation_code)
            rows.append(
                (
                    "Confirmation code",
                    format_html(
                        '<a href="{}" target="_blank" rel="noopener">{}</a> <span class="quiet">({})</span>',
                        url,
                        obj.payment_confirmation_code,
                        f"Stripe dashboard, {obj.connector.get_mode_display().lower()} mode",
                    ),
                )
            )
        for label, value in (("Token", obj.payment_token), ("Customer", obj.profile_id)):
            if value:
                rows.append((label, value))
        for label, render in extensions.summary_lines():
            value = render(obj)
            if value:
                rows.append((label, value))
        rows += [
            ("Started by", _started_by(obj)),
            (
                "Channel",
                format_html(
                    "{} · connector {} ({})",
                    obj.get_channel_display(),
                    obj.connector.unique_name,
                    obj.connector.get_environment_display().lower(),
                ),
            ),
            ("Started", _when(obj.created_at)),
            ("Ended", _when(obj.completed_at) if obj.completed_at else "not yet"),
            ("Call / payment SID", f"{obj.call_sid} / {obj.payment_sid or '—'}"),
        ]
        return format_html(
            '<table class="pay-summary">{}</table>', format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        )

    @admin.display(description="Events")
    def timeline(self, obj):
        # The selector filters by the session's tenant too: events carry their own tenant.
        events = list(selectors.pay_session_events(tenant=obj.tenant, session=obj))
        if not events:
            return "No events yet."
        seen: dict = {}  # what the callbacks so far said: each line shows only what is new
        rows = format_html_join(
            "",
            '<tr class="{}"><td class="when">{}</td><td class="nowrap">{}</td>'
            '<td class="nowrap">{}</td><td class="what">{}</td></tr>',
            (
                (
                    "late" if event.late else "",
                    _when(event.received_at),
                    _direction(event),
                    _field_of(event) or "—",
                    _what_changed(event, seen),
                )
                for event in events
            ),
        )
        return format_html(
            '<table class="pay-event-timeline"><thead><tr><th>Time ({})</th><th>Direction</th><th>Field</th>'
            "<th>What changed</th></tr></thead><tbody>{}</tbody></table>",
            timezone.get_current_timezone_name(),
            rows,
        )

    # --- Read-only for everyone -----------------------------------------------------------

    def has_cancel_permission(self, request, obj=None):
        return self._allowed(request, obj, CANCEL_ROLES)

    # --- Cancelling, through the service --------------------------------------------------

    @admin.action(description="Cancel selected sessions", permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        # The changelist queryset is scoped to what the user sees; narrow it to what they may cancel.
        cancellable = self.scope_queryset(request, queryset, roles=CANCEL_ROLES)
        sessions = list(cancellable.select_related("tenant", "connector"))
        forbidden = queryset.count() - len(sessions)
        cancelled = ended = 0
        for session in sessions:
            if session.is_terminal:
                ended += 1
                continue
            try:
                pay_session_cancel(session=session, actor=admin_actor(request))
            except ServiceError as error:
                self.message_user(request, f"{session} was not cancelled: {error.message}", messages.ERROR)
                continue
            cancelled += 1
        if cancelled:
            self.message_user(request, f"{cancelled} session(s) cancelled.", messages.SUCCESS)
        if ended:
            self.message_user(request, f"{ended} session(s) skipped: already ended.", messages.WARNING)
        if forbidden:
            self.message_user(request, f"{forbidden} session(s) skipped: you may only view them.", messages.WARNING)

    def get_object(self, request, object_id, from_field=None):
        """By id, or by the UUID the API, the simulators and the logs print: both URLs open
        the same page (another tenant's session is not found either way)."""
        if from_field is None:
            try:
                session_uuid = uuid.UUID(str(object_id))
            except ValueError:
                pass
            else:
                return self.get_queryset(request).filter(uuid=session_uuid).first()
        return super().get_object(request, object_id, from_field)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST" and "_cancel_session" in request.POST:
            return self._cancel_one(request, object_id)
        session = self.get_object(request, unquote(object_id))
        extra_context = {
            "can_cancel_session": session is not None
            and not session.is_terminal
            and self.has_cancel_permission(request, session),
            **(extra_context or {}),
        }
        if session is None:
            return super().change_view(request, object_id, form_url, extra_context)
        # Every time on the page in the session's tenant's time zone, whoever looks.
        with timezone.override(zoneinfo.ZoneInfo(session.tenant.time_zone)):
            response = super().change_view(request, str(session.pk), form_url, extra_context)
            if hasattr(response, "render"):
                response.render()
        return response

    def _cancel_one(self, request, object_id):
        session = self.get_object(request, unquote(object_id))
        if session is None:
            raise Http404("No such object.")
        if not self.has_cancel_permission(request, session):
            raise PermissionDenied
        try:
            pay_session_cancel(session=session, actor=admin_actor(request))
        except ServiceError as error:
            self.message_user(request, f"The session was not cancelled: {error.message}", messages.ERROR)
        else:
            self.message_user(request, "The session is cancelled.", messages.SUCCESS)
        return HttpResponseRedirect(request.path)


def _when(value) -> str:
    """A time with seconds, in the current (the tenant's) time zone."""
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S %Z}" if value else "—"


# Twilio's Result values (docs/twilio-pay.md §2), in words.
RESULT_WORDS = {
    "success": "Paid",
    "payment-connector-error": "Declined by the payment processor",
    "caller-interrupted-with-star": "The caller pressed * to stop",
    "caller-hung-up": "The caller hung up",
    "validation-error": "Twilio refused the input",
    "too-many-failed-attempts": "Too many failed attempts",
    "internal-error": "Twilio internal error",
}
STATUS_WORDS = {
    PaySession.Status.CREATED: "Started",
    PaySession.Status.CAPTURING: "Capturing payment details",
    PaySession.Status.READY: "Ready to complete",
    PaySession.Status.COMPLETING: "Completing",
    PaySession.Status.SUCCEEDED: "Succeeded",
    PaySession.Status.FAILED: "Failed",
    PaySession.Status.CANCELLED: "Cancelled",
    PaySession.Status.EXPIRED: "Expired",
}


def _status_words(session: PaySession) -> str:
    return STATUS_WORDS.get(session.status, session.status)


def _result_words(session: PaySession):
    if not session.result:
        if session.status == PaySession.Status.EXPIRED:
            return "No result: no request and no callback for too long"
        if session.status == PaySession.Status.CANCELLED:
            return "No result: cancelled"
        return "No result yet"
    words = RESULT_WORDS.get(session.result, session.result)
    if session.result == "success" and session.is_tokenization:
        words = "Tokenized"
    reason = session.payment_error or session.connector_error or session.twilio_error_message
    code = f" (error {session.pay_error_code})" if session.pay_error_code else ""
    if session.result != "success" and reason:
        return format_html("{}: {}{}", words, reason, code)
    return f"{words}{code}"


def _payment_method_words(session: PaySession) -> str:
    if session.card_last4:
        brand = (session.card_type or "card").replace("-", " ").title()
        expiry = session.card_expiration
        expires = f", expires {expiry[:2]}/{expiry[2:]}" if len(expiry) == 4 else ""
        return f"{brand} •••• {session.card_last4}{expires}"
    if session.bank_account_last2:
        return f"Bank account ••{session.bank_account_last2}"
    return "—"


def _started_by(session: PaySession) -> str:
    if session.started_by_user_id:
        return f"agent {session.started_by_user}"
    if session.started_by_api_key_id:
        return f"API key “{session.started_by_api_key.name}” ({session.started_by_api_key.prefix})"
    if session.channel == PaySession.Channel.IVR:
        return "the caller (IVR flow)"
    return "—"


def _direction(event: PayEvent) -> str:
    if event.direction == PayEvent.Direction.OUTBOUND:
        return f"→ Twilio ({event.kind})"
    return f"← Twilio ({event.kind})"


def _field_of(event: PayEvent) -> str:
    payload = event.payload if isinstance(event.payload, dict) else {}
    if event.direction == PayEvent.Direction.OUTBOUND:
        return payload.get("capture") or payload.get("status") or ""
    # Payments API callbacks name the field in Capture, <Pay> ones in For.
    return payload.get("Capture") or payload.get("For") or ""


def _what_changed(event: PayEvent, seen: dict):
    text = _summary(event, seen)
    notes = []
    if event.http_status is not None and event.http_status >= 400:
        notes.append(f"HTTP {event.http_status}")
    if event.error_code:
        notes.append(f"error {event.error_code}")
    if event.late:
        notes.append("arrived after the session ended: kept, not applied")
    if notes:
        return format_html('{} <span class="quiet">({})</span>', text, "; ".join(notes))
    return text


def _summary(event: PayEvent, seen: dict) -> str:
    """What an event carried that the callbacks before it had not said (masked values
    only, escaped). A request shows its parameters and Twilio's answer; the first callback,
    that Twilio started the session."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    response = event.response if isinstance(event.response, dict) else {}
    if event.direction == PayEvent.Direction.OUTBOUND:
        items = [(key, payload[key]) for key in _OUTBOUND_KEYS if key in payload]
        if response.get("error"):
            items.append(("error", response["error"]))
        if not items:
            answer = f"answered HTTP {event.http_status}" if event.http_status else "no answer"
            return f"{event.kind} requested; Twilio {answer}"
        return format_html_join(" · ", "{}={}", ((key, "(none)" if value == "" else value) for key, value in items))
    field = payload.get("Capture") or payload.get("For") or ""
    items = [(key, payload[key]) for key in _INBOUND_KEYS if key in payload and seen.get(key) != payload[key]]
    first, asks = not seen, field and field != seen.get("_field")
    seen.update((key, payload[key]) for key in _INBOUND_KEYS if key in payload)
    seen.update(_started=True, _field=field or seen.get("_field", ""))
    shown = format_html_join(" · ", "{}={}", ((key, "(none)" if value == "" else value) for key, value in items))
    if asks:
        return format_html("Twilio asks for {}{}{}", field, " · " if items else "", shown)
    if items:
        return shown
    return "Twilio started the session" if first else "nothing new (a repeated callback)"
