"""The admin for partner webhooks: endpoints (written through services.py, the secret
shown once), the delivery log with "retry", and "send test" / "rotate secret" actions.
Scoped to the user's tenants like every tenant-owned admin (tenants/admin_scoping.py)."""

from django import forms
from django.contrib import admin, messages
from django.db.models import ProtectedError
from django.urls import reverse
from django.utils.html import format_html

from config.errors import ServiceError
from payments.outbox import catalogue
from payments.partner_webhooks.models import WebhookDelivery, WebhookEndpoint
from payments.partner_webhooks.services import (
    webhook_delivery_retry,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_send_test,
    webhook_endpoint_update,
)
from tenants.admin_scoping import (
    ReadOnlyAdminMixin,
    ServiceFormAdminMixin,
    ServiceModelForm,
    TenantScopedAdminMixin,
    admin_actor,
    ending,
)

_UPDATABLE = ("url", "description", "event_types", "enabled")


class WebhookEndpointForm(ServiceModelForm):
    url = forms.CharField(
        label="URL",
        max_length=2000,
        widget=forms.URLInput(attrs={"class": "vURLField"}),
        help_text="https://… on a public address. Paydesk POSTs signed events to it.",
    )
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in catalogue.SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every event type.",
    )
    new_secret = ""

    class Meta:
        model = WebhookEndpoint
        fields = ["tenant", "url", "description", "event_types", "enabled"]

    class Media:
        css = {"all": ["partner_webhooks/admin.css"]}

    def save_via_service(self, data):
        if self.instance.pk is None:
            endpoint, self.new_secret = webhook_endpoint_create(
                tenant=data["tenant"], actor=self.actor, **{name: data[name] for name in _UPDATABLE}
            )
            return endpoint
        return webhook_endpoint_update(
            endpoint=self.instance, actor=self.actor, **{name: data[name] for name in _UPDATABLE if name in data}
        )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdminMixin, ServiceFormAdminMixin, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "tenant", "enabled", "types_display", "failing_since"]
    list_filter = ["enabled", ("tenant", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["tenant"]
    search_fields = ["url", "description"]
    autocomplete_fields = ["tenant"]
    actions = ["send_test", "rotate_secret"]
    _record = [
        "secret_display",
        "previous_secret_expires_at",
        "failing_since",
        "disabled_reason",
        "deliveries_link",
        "uuid",
        "created_at",
        "updated_at",
    ]

    def get_fieldsets(self, request, obj=None):
        main = (None, {"fields": ["tenant", "url", "description", "event_types", "enabled"]})
        if obj is None:
            return [main]
        return [main, ("Signing and health", {"fields": self._record})]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["tenant", *self._record]

    @admin.display(description="Event types")
    def types_display(self, obj):
        return ", ".join(obj.event_types) if obj.event_types else "all"

    @admin.display(description="Signing secret")
    def secret_display(self, obj):
        return "whsec_" + ending(obj.secret_last4)

    @admin.display(description="Deliveries")
    def deliveries_link(self, obj):
        url = reverse("admin:partner_webhooks_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">The delivery log</a>', url)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change and form.new_secret:
            self.message_user(
                request,
                f"The signing secret is {form.new_secret} — copy it now: it is shown only this once. "
                "Receivers verify each event's webhook-signature with it (docs/partner-webhooks.md).",
                messages.SUCCESS,
            )

    def delete_model(self, request, obj):
        webhook_endpoint_delete(endpoint=obj, actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        for endpoint in self.writable_queryset(request, queryset).select_related("tenant"):
            try:
                webhook_endpoint_delete(endpoint=endpoint, actor=admin_actor(request))
            except ProtectedError:
                self.message_user(request, f"“{endpoint}” could not be deleted.", messages.ERROR)

    @admin.action(description="Send a test event (ping)", permissions=["change"])
    def send_test(self, request, queryset):
        for endpoint in self.writable_queryset(request, queryset).select_related("tenant"):
            try:
                webhook_endpoint_send_test(endpoint=endpoint, actor=admin_actor(request))
            except ServiceError as exc:
                self.message_user(request, f"{endpoint}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"A test event is on its way to {endpoint}; see its delivery log.")

    @admin.action(description="Rotate the signing secret", permissions=["change"])
    def rotate_secret(self, request, queryset):
        for endpoint in self.writable_queryset(request, queryset).select_related("tenant"):
            endpoint, secret = webhook_endpoint_rotate_secret(endpoint=endpoint, actor=admin_actor(request))
            self.message_user(
                request,
                f"New signing secret for {endpoint}: {secret} — copy it now: it is shown only this once. "
                f"The previous secret signs too until {endpoint.previous_secret_expires_at:%Y-%m-%d %H:%M} UTC.",
                messages.SUCCESS,
            )


class EndpointFilter(admin.SimpleListFilter):
    """The endpoints the user may see (RelatedOnlyFieldListFilter would list every
    endpoint that has deliveries, whatever its tenant)."""

    title = "endpoint"
    parameter_name = "endpoint__id__exact"

    def lookups(self, request, model_admin):
        endpoints = WebhookEndpointAdmin(WebhookEndpoint, model_admin.admin_site).get_queryset(request)
        return [(e.pk, str(e)) for e in endpoints.order_by("url")[:200]]

    def queryset(self, request, queryset):
        return queryset.filter(endpoint_id=self.value()) if self.value() else queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["event_type", "endpoint", "status", "attempts", "last_answer", "next_attempt_at", "created_at"]
    list_filter = ["status", EndpointFilter]
    list_select_related = ["event", "endpoint"]
    search_fields = ["event__uuid", "endpoint__url"]
    actions = ["retry"]
    fields = [
        "endpoint",
        "event_type",
        "event_id_display",
        "status",
        "attempts",
        "first_attempt_at",
        "last_attempt_at",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "last_response_body",
        "completed_at",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description="Event type", ordering="event__type")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description="Event (webhook-id)")
    def event_id_display(self, obj):
        return obj.event.public_id

    @admin.display(description="Last answer")
    def last_answer(self, obj):
        if obj.last_status_code:
            return f"HTTP {obj.last_status_code}"
        return obj.last_error or "—"

    def has_retry_permission(self, request):
        return self._allowed(request, None, self.write_roles)

    @admin.action(description="Retry selected deliveries", permissions=["retry"])
    def retry(self, request, queryset):
        done, refused = 0, {}
        for delivery in self.writable_queryset(request, queryset).select_related("endpoint__tenant", "event"):
            try:
                webhook_delivery_retry(delivery=delivery, actor=admin_actor(request))
            except ServiceError as exc:
                refused[exc.message] = refused.get(exc.message, 0) + 1
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} deliver{'y' if done == 1 else 'ies'} queued again.", messages.SUCCESS)
        for message, count in refused.items():
            self.message_user(request, f"Not retried ({count}): {message}", messages.WARNING)
