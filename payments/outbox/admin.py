"""The events partners are told about, read-only and scoped to the user's tenants."""

import json

from django.contrib import admin
from django.utils.html import format_html

from payments.outbox.models import Event
from tenants.admin_scoping import ReadOnlyAdminMixin, TenantScopedAdminMixin


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["type", "public_id", "tenant", "created_at"]
    list_filter = ["type", ("tenant", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["tenant"]
    search_fields = ["uuid", "ordering_key"]
    date_hierarchy = "created_at"
    fields = ["type", "public_id", "tenant", "ordering_key", "created_at", "dispatched_at", "payload_display"]
    readonly_fields = fields

    @admin.display(description="Id (webhook-id)")
    def public_id(self, obj):
        return obj.public_id

    @admin.display(description="Payload")
    def payload_display(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(json.loads(obj.payload), indent=2, ensure_ascii=False))
