"""The console's settings per tenant (owners and admins write them, through a service,
audited) and its one-time links (read-only: a log)."""

from django import forms
from django.contrib import admin

from payments.console.models import ConsoleLink, ConsoleSettings
from payments.console.services import SETTINGS_FIELDS, console_settings_update
from tenants.admin_scoping import ReadOnlyAdminMixin, ServiceFormAdminMixin, ServiceModelForm, TenantScopedAdminMixin


class ConsoleSettingsForm(ServiceModelForm):
    class Meta:
        model = ConsoleSettings
        fields = ["tenant", *SETTINGS_FIELDS]
        widgets = {"frame_origins": forms.Textarea(attrs={"rows": 4, "placeholder": "https://crm.example.com"})}

    def save_via_service(self, data):
        tenant = data["tenant"] if self.instance.pk is None else self.instance.tenant
        return console_settings_update(
            tenant=tenant, actor=self.actor, **{name: data[name] for name in SETTINGS_FIELDS if name in data}
        )


@admin.register(ConsoleSettings)
class ConsoleSettingsAdmin(TenantScopedAdminMixin, ServiceFormAdminMixin, admin.ModelAdmin):
    form = ConsoleSettingsForm
    list_display = ["tenant", "allow_tokenize", "allow_ach", "frame_origins", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        return ["tenant"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False  # clear the fields instead: the audit log refers to the row


@admin.register(ConsoleLink)
class ConsoleLinkAdmin(ReadOnlyAdminMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "tenant", "session", "agent_reference", "expires_at", "used_at"]
    list_filter = ["tenant"]
    fields = ["uuid", "tenant", "session", "api_key", "agent_reference", "created_at", "expires_at", "used_at"]
    readonly_fields = fields
