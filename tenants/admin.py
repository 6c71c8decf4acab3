"""The admin for business admins: tenants, memberships, API keys and the audit log.

Every write calls a service (the forms are ServiceModelForms); every list, form,
autocomplete and action is scoped to the user's tenants (tenants/admin_scoping.py).
"""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.utils.html import format_html

from tenants.admin_lists import ScalableListMixin, TenantListFilter, choices_filter
from tenants.admin_scoping import (
    SECRET_WIDGET,
    ReadOnlyAdminMixin,
    ServiceFormAdminMixin,
    ServiceModelForm,
    TenantScopedAdminMixin,
    admin_actor,
    ending,
)
from tenants.models import DEFAULT_SCOPES, ApiKey, AuditEvent, Membership, Scope, Tenant
from tenants.services import (
    api_key_create,
    api_key_revoke,
    membership_remove,
    membership_set,
    tenant_create,
    tenant_set_status,
    tenant_update,
)

# --- Tenants --------------------------------------------------------------------------

_TENANT_UPDATABLE = ("name", "twilio_account_sid", "time_zone", "default_currency")


class TenantForm(ServiceModelForm):
    twilio_auth_token = forms.CharField(
        label="Twilio auth token",
        required=False,
        widget=SECRET_WIDGET,
        help_text="32 hexadecimal characters. Write-only: leave blank to keep the stored token.",
    )

    class Meta:
        model = Tenant
        fields = ["name", "slug", "twilio_account_sid", "time_zone", "default_currency"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and "twilio_auth_token" in self.fields:
            self.fields["twilio_auth_token"].required = True
            self.fields["twilio_auth_token"].help_text = "32 hexadecimal characters. Write-only: never shown again."

    def save_via_service(self, data):
        if self.instance.pk is None:
            return tenant_create(
                slug=data["slug"],
                twilio_auth_token=data["twilio_auth_token"],
                actor=self.actor,
                **{name: data[name] for name in _TENANT_UPDATABLE},
            )
        return tenant_update(
            tenant=self.instance,
            actor=self.actor,
            twilio_auth_token=data.get("twilio_auth_token") or None,
            **{name: data[name] for name in _TENANT_UPDATABLE if name in data},
        )


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdminMixin, ServiceFormAdminMixin, admin.ModelAdmin):
    tenant_field = "pk"
    form = TenantForm
    list_display = ["name", "slug", "status", "twilio_account_sid", "default_currency", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "slug", "twilio_account_sid"]
    actions = ["suspend", "reactivate"]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (None, {"fields": ["name", "slug"]}),
                ("Twilio", {"fields": ["twilio_account_sid", "twilio_auth_token"]}),
                ("Defaults", {"fields": ["time_zone", "default_currency"]}),
            ]
        token_input = ["twilio_auth_token"] if self.has_change_permission(request, obj) else []
        return [
            (None, {"fields": ["name", "slug", "status", "uuid"]}),
            ("Twilio", {"fields": ["twilio_account_sid", "twilio_auth_token_last4_display", *token_input]}),
            ("Defaults", {"fields": ["time_zone", "default_currency"]}),
            ("Record", {"fields": ["created_at", "updated_at"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["slug", "status", "uuid", "twilio_auth_token_last4_display", "created_at", "updated_at"]

    @admin.display(description="Twilio auth token (stored)")
    def twilio_auth_token_last4_display(self, obj):
        return ending(obj.twilio_auth_token_last4)

    # Tenants are created by Paydesk staff, never deleted (their audit trail refers to them),
    # and suspended or reactivated only by superusers: a suspended tenant must not lift
    # its own suspension.
    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False

    def has_set_status_permission(self, request):
        return request.user.is_superuser

    @admin.action(description="Suspend selected tenants", permissions=["set_status"])
    def suspend(self, request, queryset):
        self._set_status(request, queryset, Tenant.Status.SUSPENDED)

    @admin.action(description="Reactivate selected tenants", permissions=["set_status"])
    def reactivate(self, request, queryset):
        self._set_status(request, queryset, Tenant.Status.ACTIVE)

    def _set_status(self, request, queryset, status):
        changed = 0
        for tenant in self.writable_queryset(request, queryset):
            before = tenant.status
            changed += tenant_set_status(tenant=tenant, status=status, actor=admin_actor(request)).status != before
        self.message_user(request, f"{changed} tenant(s) now {status}.", messages.SUCCESS)


# --- Memberships ----------------------------------------------------------------------


class MembershipForm(ServiceModelForm):
    # A username, not a select: a tenant manager must not get a list of every user.
    username = forms.CharField(
        max_length=150,
        help_text="The login name of an existing user. To use this admin they also need staff status.",
    )

    class Meta:
        model = Membership
        fields = ["tenant", "role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields.pop("username", None)

    def clean_username(self):
        user_model = get_user_model()
        try:
            return user_model.objects.get(**{user_model.USERNAME_FIELD: self.cleaned_data["username"]})
        except user_model.DoesNotExist:
            raise ValidationError("No user has this username.") from None

    def save_via_service(self, data):
        if self.instance.pk is not None:
            return membership_set(
                tenant=self.instance.tenant, user=self.instance.user, role=data["role"], actor=self.actor
            )
        tenant, user = data["tenant"], data["username"]
        if Membership.objects.filter(tenant=tenant, user=user).exists():
            raise ValidationError({"username": [f"{user} is already a member of {tenant}; change that membership."]})
        return membership_set(tenant=tenant, user=user, role=data["role"], actor=self.actor)


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdminMixin, ServiceFormAdminMixin, admin.ModelAdmin):
    form = MembershipForm
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", ("tenant", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["user", "tenant"]
    search_fields = ["user__username", "user__email"]
    autocomplete_fields = ["tenant"]

    def get_fields(self, request, obj=None):
        return ["tenant", "username", "role"] if obj is None else ["tenant", "user", "role", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["tenant", "user", "created_at"]

    def delete_model(self, request, obj):
        membership_remove(membership=obj, actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        for membership in self.writable_queryset(request, queryset).select_related("user", "tenant"):
            membership_remove(membership=membership, actor=admin_actor(request))


# --- API keys -------------------------------------------------------------------------


class ApiKeyForm(ServiceModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[str(scope) for scope in DEFAULT_SCOPES],
    )

    class Meta:
        model = ApiKey
        fields = ["tenant", "name"]

    raw_key = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:  # a key is read-only once created
            for name in ("tenant", "name", "scopes"):
                self.fields.pop(name, None)

    def save_via_service(self, data):
        if self.instance.pk is not None:
            return self.instance  # revoking is the only change, and it has its own button
        key, self.raw_key = api_key_create(
            tenant=data["tenant"], name=data["name"], scopes=data["scopes"], actor=self.actor
        )
        return key


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(revoked_at__isnull=self.value() == "no")
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdminMixin, ServiceFormAdminMixin, admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "tenant", "prefix_display", "scopes_display", "created_at", "last_used_at", "revoked"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), RevokedFilter]
    list_select_related = ["tenant"]
    search_fields = ["name", "prefix"]
    autocomplete_fields = ["tenant"]
    actions = ["revoke_selected"]
    _detail = ["name", "tenant", "prefix_display", "scopes_display", "created_at", "created_by", "last_used_at"]

    def get_fields(self, request, obj=None):
        return ["tenant", "name", "scopes"] if obj is None else [*self._detail, "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else [*self._detail, "revoked_at"]

    @admin.display(description="Prefix", ordering="prefix")
    def prefix_display(self, obj):
        return f"pdk_{obj.prefix}_…"

    @admin.display(description="Scopes")
    def scopes_display(self, obj):
        return ", ".join(obj.scopes)

    @admin.display(description="Revoked", boolean=True, ordering="revoked_at")
    def revoked(self, obj):
        return obj.is_revoked

    def has_delete_permission(self, request, obj=None):
        return False  # keys are revoked, never deleted: the audit log refers to them

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change and form.raw_key:
            self.message_user(
                request,
                f"The new API key is {form.raw_key} — copy it now: it is shown only this once and cannot be recovered.",
                messages.SUCCESS,
            )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST" and "_revoke" in request.POST:
            key = self.get_object(request, unquote(object_id))
            if key is None:
                raise Http404("No such object.")
            if not self.has_change_permission(request, key):
                raise PermissionDenied
            api_key_revoke(api_key=key, actor=admin_actor(request))
            self.message_user(request, f"The API key “{key}” is revoked.", messages.SUCCESS)
            return HttpResponseRedirect(request.path)
        extra_context = {
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        keys = list(self.writable_queryset(request, queryset).filter(revoked_at__isnull=True))
        for key in keys:
            api_key_revoke(api_key=key, actor=admin_actor(request))
        self.message_user(request, f"{len(keys)} API key(s) revoked.", messages.SUCCESS)


# --- Audit log ------------------------------------------------------------------------


# The actions the audit log records, as its filter offers them (from code, not from the
# log: a SELECT DISTINCT over it would read every row). An action missing here is still
# logged, listed and found by the search box.
AUDIT_ACTIONS = [
    "admin.login",
    "admin.login_failed",
    "api_key.created",
    "api_key.revoked",
    "connector.created",
    "connector.deleted",
    "connector.secret_replaced",
    "connector.updated",
    "encryption.rotated",
    "ivr_flow.created",
    "ivr_flow.updated",
    "membership.created",
    "membership.deleted",
    "membership.updated",
    "pay_session.cancelled",
    "reconciliation.item_resolved",
    "reconciliation.requested",
    "report.delivered",
    "report.downloaded",
    "report.export_completed",
    "report.export_failed",
    "report.export_requested",
    "report.exported",
    "report.saved_report_created",
    "report.schedule_created",
    "tenant.created",
    "tenant.reactivated",
    "tenant.suspended",
    "tenant.updated",
]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, ScalableListMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    """Read-only for everyone, superusers included: the log is append-only. Newest first,
    filtered and searched on indexes that lead with the tenant (AuditEvent.Meta.indexes)."""

    list_display = ["created_at", "tenant", "actor", "action", "target_repr"]
    list_filter = [choices_filter("action", AUDIT_ACTIONS), TenantListFilter, "created_at"]
    list_select_related = ["tenant"]
    search_fields = ["actor__startswith", "action__startswith", "target_id__exact"]
    search_help_text = "Who acted (user:… or api_key:…, the start of it), an action, or the target's id."
    sortable_by = ["created_at"]
    actions = None
    fields = [
        "created_at",
        "tenant",
        "actor",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "changes_pretty",
        "ip_address",
    ]
    readonly_fields = fields

    @admin.display(description="Changes")
    def changes_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.changes, indent=2, sort_keys=True, ensure_ascii=False))
