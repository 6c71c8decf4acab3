"""The admin for Pay Connector instances: scoped to the user's tenants, written through
connectors/services.py (so the live/test guard holds here too), secrets write-only."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.db.models import ProtectedError, RestrictedError
from django.http import HttpResponseRedirect
from django.urls import reverse

from connectors.models import ConnectorInstance
from connectors.services import connector_create, connector_delete, connector_update, connector_verify
from tenants.admin_scoping import (
    SECRET_WIDGET,
    ServiceFormAdminMixin,
    ServiceModelForm,
    TenantScopedAdminMixin,
    admin_actor,
    ending,
)

_UPDATABLE = ("unique_name", "environment", "is_active", "notes")


class ConnectorForm(ServiceModelForm):
    stripe_secret_key = forms.CharField(
        label="Stripe secret key",
        required=False,
        widget=SECRET_WIDGET,
        help_text="sk_live_… or rk_live_… for production; sk_test_… or rk_test_… for staging and development. "
        "Write-only: leave blank to keep the stored key.",
    )
    stripe_webhook_secret = forms.CharField(
        label="Stripe webhook signing secret",
        required=False,
        widget=SECRET_WIDGET,
        help_text="whsec_…. Write-only: leave blank to keep the stored secret.",
    )

    class Meta:
        model = ConnectorInstance
        fields = ["tenant", "unique_name", "provider", "environment", "is_active", "notes"]
        help_texts = {"environment": "Production connectors run in live mode; staging and development in test mode."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and "stripe_secret_key" in self.fields:
            self.fields["stripe_secret_key"].required = True

    def save_via_service(self, data):
        if self.instance.pk is None:
            return connector_create(
                tenant=data["tenant"],
                provider=data["provider"],
                stripe_secret_key=data["stripe_secret_key"],
                stripe_webhook_secret=data.get("stripe_webhook_secret") or "",
                actor=self.actor,
                **{name: data[name] for name in _UPDATABLE},
            )
        return connector_update(
            connector=self.instance,
            actor=self.actor,
            stripe_secret_key=data.get("stripe_secret_key") or None,
            stripe_webhook_secret=data.get("stripe_webhook_secret") or None,
            **{name: data[name] for name in _UPDATABLE if name in data},
        )


@admin.register(ConnectorInstance)
class ConnectorInstanceAdmin(TenantScopedAdminMixin, ServiceFormAdminMixin, admin.ModelAdmin):
    form = ConnectorForm
    list_display = [
        "unique_name",
        "tenant",
        "environment",
        "mode",
        "is_active",
        "stripe_key",
        "verify_status",
        "last_verified_at",
    ]
    list_filter = ["environment", "mode", "provider", "is_active", ("tenant", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["tenant"]
    search_fields = ["unique_name", "notes"]
    autocomplete_fields = ["tenant"]
    actions = ["verify_selected"]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (None, {"fields": ["tenant", "unique_name", "provider", "environment", "is_active", "notes"]}),
                ("Stripe credentials", {"fields": ["stripe_secret_key", "stripe_webhook_secret"]}),
            ]
        can_change = self.has_change_permission(request, obj)
        key_input = ["stripe_secret_key"] if can_change else []
        webhook_input = ["stripe_webhook_secret"] if can_change else []
        return [
            (None, {"fields": ["tenant", "unique_name", "provider", "environment", "mode", "is_active", "notes"]}),
            (
                "Stripe credentials",
                {
                    "fields": [
                        "stripe_secret_key_last4_display",
                        *key_input,
                        "stripe_webhook_secret_last4_display",
                        *webhook_input,
                    ]
                },
            ),
            (
                "Verification",
                {"fields": ["verify_status", "last_verified_at", "last_verify_attempt_at", "last_verify_error"]},
            ),
            ("Record", {"fields": ["uuid", "created_at", "updated_at"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "tenant",
            "provider",
            "mode",
            "stripe_secret_key_last4_display",
            "stripe_webhook_secret_last4_display",
            "verify_status",
            "last_verified_at",
            "last_verify_attempt_at",
            "last_verify_error",
            "uuid",
            "created_at",
            "updated_at",
        ]

    @admin.display(description="Key")
    def stripe_key(self, obj):
        return ending(obj.stripe_secret_key_last4)

    @admin.display(description="Stripe secret key (stored)")
    def stripe_secret_key_last4_display(self, obj):
        return ending(obj.stripe_secret_key_last4)

    @admin.display(description="Webhook signing secret (stored)")
    def stripe_webhook_secret_last4_display(self, obj):
        return ending(obj.stripe_webhook_secret_last4)

    # --- Deletion, through connector_delete ---------------------------------------------

    def delete_model(self, request, obj):
        try:
            connector_delete(connector=obj, actor=admin_actor(request))
        except (ProtectedError, RestrictedError):
            request._paydesk_delete_refused = True
            self.message_user(
                request, f"“{obj}” is still referenced (pay sessions), so it was not deleted.", messages.ERROR
            )

    def response_delete(self, request, obj_display, obj_id):
        if getattr(request, "_paydesk_delete_refused", False):
            opts = self.opts
            url = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change",
                args=[quote(obj_id)],
                current_app=self.admin_site.name,
            )
            return HttpResponseRedirect(url)
        return super().response_delete(request, obj_display, obj_id)

    def delete_queryset(self, request, queryset):
        for connector in self.writable_queryset(request, queryset).select_related("tenant"):
            try:
                connector_delete(connector=connector, actor=admin_actor(request))
            except (ProtectedError, RestrictedError):
                self.message_user(
                    request, f"“{connector}” is still referenced (pay sessions), so it was not deleted.", messages.ERROR
                )

    # --- Verification -------------------------------------------------------------------

    @admin.action(description="Verify selected connectors with Stripe", permissions=["change"])
    def verify_selected(self, request, queryset):
        writable = list(self.writable_queryset(request, queryset).select_related("tenant"))
        skipped = queryset.count() - len(writable)
        failed = []
        for connector in writable:
            connector = connector_verify(connector=connector, actor=admin_actor(request))
            if connector.last_verify_error:
                failed.append(f"{connector.unique_name}: {connector.last_verify_error}")
        if len(writable) > len(failed):
            self.message_user(request, f"{len(writable) - len(failed)} connector(s) verified.", messages.SUCCESS)
        for line in failed:
            self.message_user(request, f"Verification failed for {line}", messages.ERROR)
        if skipped:
            self.message_user(request, f"{skipped} connector(s) skipped: you may only view them.", messages.WARNING)
