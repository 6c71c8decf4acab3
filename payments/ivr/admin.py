"""The admin of IVR payment flows: scoped to the user's tenants, written through
payments/ivr/services.py, amounts typed in major units, every prompt editable, and a
preview of the TwiML a caller would get. Partner references are read-only here. IVR pay
sessions appear in the pay-session list with channel "ivr"."""

from xml.dom import minidom

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from connectors.models import ConnectorInstance
from core import money
from payments.ivr import services, twiml
from payments.ivr.models import CARD_TYPES, PaymentFlow, PaymentReference
from payments.ivr.prompts import PROMPTS, Speaker, placeholder_errors
from tenants.admin_lists import ScalableListMixin
from tenants.admin_scoping import (
    ReadOnlyAdminMixin,
    ServiceFormAdminMixin,
    ServiceModelForm,
    TenantScopedAdminMixin,
    tenant_ids,
)

_AMOUNTS = {"fixed_amount": "fixed_amount_minor", "min_amount": "min_amount_minor", "max_amount": "max_amount_minor"}
_MODEL_FIELDS = [
    "name", "connector", "is_active", "operation", "token_type", "currency", "amount_source", "amount_entry",
    "language", "max_attempts", "retry_on_decline", "timeout", "postal_code", "security_code",
    "min_postal_code_length", "description", "parameters",
]  # fmt: skip


class _PaymentFlowFormBase(ServiceModelForm):
    fixed_amount = forms.CharField(required=False, help_text="Major units, e.g. 12.50 (fixed-amount flows).")
    min_amount = forms.CharField(required=False, help_text="Major units; blank: no minimum.")
    max_amount = forms.CharField(required=False, help_text="Major units; blank: no maximum.")
    valid_card_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in CARD_TYPES],
        widget=forms.CheckboxSelectMultiple,
        initial=["visa", "mastercard", "amex"],
    )

    class Meta:
        model = PaymentFlow
        fields = ["tenant", *_MODEL_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        flow = self.instance
        if flow.pk:
            for name, attr in _AMOUNTS.items():
                value = getattr(flow, attr)
                self.initial[name] = "" if value is None else money.to_major_string(value, flow.currency)
            self.initial["valid_card_types"] = flow.card_types
            for key in PROMPTS:
                self.initial[f"prompt_{key}"] = (flow.prompts or {}).get(key, "")

    def clean(self):
        data = super().clean()
        currency = data.get("currency") or self.instance.currency
        for name, attr in _AMOUNTS.items():
            text = (data.get(name) or "").strip()
            data[attr] = None
            if text:
                try:
                    data[attr] = money.parse_major(text, currency) or None
                except ValidationError as exc:
                    self.add_error(name, exc)
        data["valid_card_types"] = " ".join(data.get("valid_card_types") or [])
        for key in PROMPTS:
            for error in placeholder_errors(data.get(f"prompt_{key}", "")):
                self.add_error(f"prompt_{key}", error)
        data["prompts"] = {
            key: data[f"prompt_{key}"].strip() for key in PROMPTS if data.get(f"prompt_{key}", "").strip()
        }
        return data

    def add_service_errors(self, exc: ValidationError) -> None:
        if hasattr(exc, "error_dict"):  # the service names minor-unit fields; the form shows major ones
            renamed = {next((k for k, v in _AMOUNTS.items() if v == f), f): e for f, e in exc.error_dict.items()}
            exc = ValidationError(renamed)
        super().add_service_errors(exc)

    def save_via_service(self, data):
        fields = {name: data[name] for name in _MODEL_FIELDS if name in data}
        fields.update({attr: data[attr] for attr in _AMOUNTS.values()})
        fields.update(valid_card_types=data["valid_card_types"], prompts=data["prompts"])
        if self.instance.pk is None:
            return services.payment_flow_create(tenant=data["tenant"], actor=self.actor, **fields)
        return services.payment_flow_update(flow=self.instance, actor=self.actor, **fields)


def _prompt_fields() -> dict:
    return {
        f"prompt_{key}": forms.CharField(
            label=label,
            required=False,
            widget=forms.Textarea(attrs={"rows": 2, "cols": 90, "placeholder": default}),
            help_text="Blank: the default shown. Placeholders: {business} {amount} {major_units} {minor_units} "
            "{reference} {minimum} {maximum}.",
        )
        for key, (label, default) in PROMPTS.items()
    }


PaymentFlowForm = type("PaymentFlowForm", (_PaymentFlowFormBase,), _prompt_fields())


def pretty(xml: str) -> str:
    return minidom.parseString(xml.encode()).toprettyxml(indent="  ")  # noqa: S318 - our own TwiML


def flow_preview(flow: PaymentFlow, amount_minor: int) -> list[tuple[str, str]]:
    """(step, TwiML) for a sample amount: what a caller meets, step by step."""
    speaker = Speaker.for_flow(flow)
    steps = []
    charging = not flow.is_tokenization
    if charging and flow.amount_source != PaymentFlow.AmountSource.FIXED:
        steps.append(("Voice webhook", twiml.first_entry(flow, speaker, attempt=1, preface=[speaker.say("greeting")])))
        steps.append(("Read-back", twiml.confirmation(flow, speaker, amount_minor=amount_minor, attempt=1)))
    session = services.ivr_pay_session_preview(flow=flow, amount_minor=amount_minor if charging else None)
    steps.append(("<Pay>", twiml.pay(flow, speaker, session)))
    steps.append(("Success", twiml.outcome(flow, speaker, session, result="success", can_retry=False)))
    return [(title, pretty(twiml.render(document))) for title, document in steps]


@admin.register(PaymentFlow)
class PaymentFlowAdmin(TenantScopedAdminMixin, ServiceFormAdminMixin, admin.ModelAdmin):
    form = PaymentFlowForm
    list_display = ["name", "tenant", "connector", "operation", "amount_source", "currency", "language", "is_active"]
    list_filter = ["is_active", "operation", "amount_source", "language", ("tenant", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["tenant", "connector"]
    search_fields = ["name"]
    autocomplete_fields = ["tenant"]

    def get_fieldsets(self, request, obj=None):
        main = ["tenant", "name", "connector", "is_active", "operation", "token_type", "currency"]
        fieldsets = [
            (None, {"fields": main}),
            ("Amount", {"fields": ["amount_source", "amount_entry", "fixed_amount", "min_amount", "max_amount"]}),
            (
                "Caller experience",
                {"fields": ["language", "max_attempts", "retry_on_decline", "timeout", "description", "parameters"]},
            ),
            ("Card", {"fields": ["valid_card_types", "security_code", "postal_code", "min_postal_code_length"]}),
            ("Prompts", {"classes": ["collapse"], "fields": [f"prompt_{key}" for key in PROMPTS]}),
        ]
        if obj is not None:
            fieldsets.insert(1, ("Twilio", {"fields": ["voice_url", "twiml_preview"]}))
            fieldsets.append(("Record", {"fields": ["uuid", "created_at", "updated_at"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = ["voice_url", "twiml_preview", "uuid", "created_at", "updated_at"]
        return [*readonly, "tenant"] if obj is not None else readonly

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is ConnectorInstance and not request.user.is_superuser:
            kwargs["queryset"] = ConnectorInstance.objects.filter(tenant_id__in=tenant_ids(request, self.write_roles))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Voice webhook URL")
    def voice_url(self, obj):
        url = settings.PAYDESK_PUBLIC_BASE_URL + reverse("ivr-voice", kwargs={"token": obj.voice_token})
        return format_html("<code>{}</code><br>Set it (POST) as the voice webhook of the tenant's number.", url)

    @admin.display(description="TwiML preview")
    def twiml_preview(self, obj):
        amount = twiml.sample_amount(obj)
        steps = format_html_join("", "<p><strong>{}</strong></p><pre>{}</pre>", flow_preview(obj, amount))
        if obj.is_tokenization:
            return format_html("Tokenization: no amount. {}", steps)
        other = reverse("admin:ivr_paymentflow_preview", args=[obj.pk])
        return format_html(
            "Sample amount {} {}. {}<p><a href='{}?amount={}'>Preview another amount</a> (edit <code>amount</code>"
            " in the address).</p>",
            money.to_major_string(amount, obj.currency),
            obj.currency,
            steps,
            other,
            money.to_major_string(amount, obj.currency),
        )

    def get_urls(self):
        preview = path(
            "<path:object_id>/preview/", self.admin_site.admin_view(self.preview_view), name="ivr_paymentflow_preview"
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request, object_id):
        flow = self.get_object(request, object_id)
        if flow is None or not self.has_view_permission(request, flow):
            raise Http404("No such object.")
        try:
            amount = money.parse_major(request.GET.get("amount", ""), flow.currency)
        except ValidationError as exc:
            return HttpResponse(" ".join(exc.messages), status=400, content_type="text/plain")
        if amount <= 0:
            return HttpResponse("The amount must be more than zero.", status=400, content_type="text/plain")
        text = "\n".join(f"<!-- {title} -->\n{xml}" for title, xml in flow_preview(flow, amount))
        return HttpResponse(text, content_type="text/plain; charset=utf-8")


class FlowFilter(admin.SimpleListFilter):
    """The flows of the user's tenants (the flows table, not a DISTINCT over references)."""

    title = "flow"
    parameter_name = "flow__id__exact"

    def lookups(self, request, model_admin):
        flows = PaymentFlow.objects.order_by("name")
        if not request.user.is_superuser:
            flows = flows.filter(tenant_id__in=tenant_ids(request))
        return [(str(f.pk), f.name) for f in flows]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(flow_id=int(value)) if value.isdigit() else queryset.none()


@admin.register(PaymentReference)
class PaymentReferenceAdmin(ReadOnlyAdminMixin, ScalableListMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    """Registered by partner apps through the API; read-only here."""

    list_display = ["reference", "flow", "amount", "status", "paid_session", "created_at"]
    list_filter = ["status", FlowFilter]
    sortable_by = ["created_at"]
    list_select_related = ["flow", "paid_session"]
    search_fields = ["reference__exact"]
    fields = ["uuid", "tenant", "flow", "reference", "amount", "description", "status", "paid_session", "paid_at",
              "registered_by_api_key", "created_at", "updated_at"]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Amount")
    def amount(self, obj):
        return f"{money.to_major_string(obj.amount_minor, obj.currency)} {obj.currency}"
