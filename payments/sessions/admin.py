"""The pay-sessions admin: a scoped, read-only view of sessions and their event timeline,
with one write, cancelling, which goes through payments.sessions.services.pay_session_cancel.

Money and state are never edited by hand, so nobody (superusers included) may add,
change or delete a session here. Cancelling is allowed to the roles that run calls.
"""

import re
import uuid

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
_INBOUND_KEYS = (
    "Capture",
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
_OUTBOUND_KEYS = ("capture", "status", "charge_amount", "currency", "token_type", "payment_method", "payment_connector")


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
        "created_at",
        "tenant",
        "connector_name",
        "environment",
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

    fieldsets = [
        (
            "Request",
            {
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
                ]
            },
        ),
        ("Progress", {"fields": ["status", "capturing_field", "required_fields", "last_error_type"]}),
        (
            "Masked values",
            {
                "fields": [
                    "card_number_masked",
                    "card_last4",
                    "card_type",
                    "card_expiration",
                    "postal_code_value",
                    "bank_routing_number",
                    "bank_account_last2",
                ]
            },
        ),
        (
            "Outcome",
            {
                "fields": [
                    "result",
                    "payment_confirmation_code",
                    "payment_token",
                    "profile_id",
                    "pay_error_code",
                    "payment_error",
                    "connector_error",
                ]
            },
        ),
        ("Twilio error", {"fields": ["twilio_error_code", "twilio_error_message"]}),
        (
            "Who and when",
            {
                "fields": [
                    "started_by_user",
                    "started_by_api_key",
                    "created_at",
                    "updated_at",
                    "last_activity_at",
                    "completed_at",
                ]
            },
        ),
        ("Event timeline", {"fields": ["timeline"]}),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    # Peer apps (reconciliation, reports, …) plug in their panels and actions through
    # payments.sessions.extensions: this app never imports them.

    @property
    def actions(self):
        return ["cancel_selected", *extensions.admin_actions()]

    def get_fieldsets(self, request, obj=None):
        *own, timeline = self.fieldsets
        panels = [(panel.title, {"fields": [panel.render]}) for panel in extensions.admin_panels()]
        return [*own, *panels, timeline]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, *(panel.render for panel in extensions.admin_panels())]

    # --- Search: one box, each identifier on its own index ----------------------------------

    def get_search_results(self, request, queryset, search_term):
        """What a person pastes: a session's UUID, a payment SID (PK…) or call SID (CA…), whole
        or a prefix, a card's last 4, a confirmation code (whole or a prefix) or an IVR
        payment reference. Each is looked up on an index that serves it within a tenant
        (PaySession.Meta.indexes; the UUID, the SIDs and the codes are unique enough for
        their own column's index, last 4 and references are not)."""
        queryset, _ = super().get_search_results(request, queryset, "")  # the tenant scoping
        term = search_term.strip()
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
        return queryset.filter(found), False

    # --- Columns --------------------------------------------------------------------------

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

    @admin.display(description="Events")
    def timeline(self, obj):
        # The selector filters by the session's tenant too: events carry their own tenant.
        events = list(selectors.pay_session_events(tenant=obj.tenant, session=obj))
        if not events:
            return "No events yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    _when(event.received_at),
                    "→ out" if event.direction == PayEvent.Direction.OUTBOUND else "← in",
                    event.kind,
                    _summary(event),
                    event.http_status if event.http_status is not None else "—",
                    event.error_code or "—",
                    _when(event.applied_at),
                    "late" if event.late else "",
                )
                for event in events
            ),
        )
        return format_html(
            '<table class="pay-event-timeline"><thead><tr><th>Received</th><th>Direction</th><th>Kind</th>'
            "<th>Details</th><th>HTTP</th><th>Error</th><th>Applied</th><th>Late</th></tr></thead>"
            "<tbody>{}</tbody></table>",
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
        return super().change_view(request, object_id, form_url, extra_context)

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
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S}" if value else "—"


def _summary(event: PayEvent) -> str:
    """A compact, escaped rendering of what an event carried (masked values only)."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    keys = _OUTBOUND_KEYS if event.direction == PayEvent.Direction.OUTBOUND else _INBOUND_KEYS
    items = [(key, payload[key]) for key in keys if key in payload]
    if not items:
        items = sorted(payload.items())[:6]
    response = event.response if isinstance(event.response, dict) else {}
    if response.get("error"):
        items.append(("error", response["error"]))
    if not items:
        return "—"
    return format_html_join(" · ", "{}={}", ((key, "(none)" if value == "" else value) for key, value in items))
