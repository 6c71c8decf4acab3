"""Superusers' side of the controls: login locks (seen and lifted) and users' second-factor
devices (reset). Both write through audited services; tenant managers see neither."""

from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils import timezone
from django_otp_webauthn.models import WebAuthnCredential

from tenants.admin_scoping import ReadOnlyAdminMixin, admin_actor
from tenants.security import services
from tenants.security.models import LoginLock, RecoveryCode, TotpDevice


class SuperuserOnlyMixin:
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


class LockedFilter(admin.SimpleListFilter):
    title = "locked now"
    parameter_name = "locked"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        locked = queryset.filter(
            failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
            attempt_time__gt=timezone.now() - settings.AXES_COOLOFF_TIME,
        )
        if self.value() == "yes":
            return locked
        if self.value() == "no":
            return queryset.exclude(pk__in=locked.values("pk"))
        return queryset


@admin.register(LoginLock)
class LoginLockAdmin(SuperuserOnlyMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["username", "ip_address", "failures_since_start", "attempt_time", "locked_until"]
    list_filter = [LockedFilter]
    search_fields = ["username", "ip_address"]
    ordering = ["-attempt_time"]
    actions = ["lift"]
    fields = ["username", "ip_address", "user_agent", "path_info", "failures_since_start", "attempt_time"]
    readonly_fields = fields

    @admin.display(description="Locked until")
    def locked_until(self, obj):
        if obj.failures_since_start < settings.AXES_FAILURE_LIMIT:
            return "not locked"
        until = obj.attempt_time + timedelta(seconds=settings.PAYDESK_LOGIN_LOCKOUT_SECONDS)
        return until if until > timezone.now() else "expired"

    def has_lift_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    @admin.action(description="Lift the selected locks (they may sign in again at once)", permissions=["lift"])
    def lift(self, request, queryset):
        lifted = services.login_locks_lift(attempts=queryset, actor=admin_actor(request))
        self.message_user(request, f"{lifted} lock(s) lifted.", messages.SUCCESS)


User = get_user_model()


@admin.display(description="Second factor")
def second_factor(user) -> str:
    kinds = []
    if TotpDevice.objects.filter(user=user, confirmed=True).exists():
        kinds.append("app")
    if WebAuthnCredential.objects.filter(user=user, confirmed=True).exists():
        kinds.append("passkey")
    left = RecoveryCode.objects.filter(device__user=user).count()
    if left:
        kinds.append(f"{left} recovery codes")
    return ", ".join(kinds) or "none"


class PaydeskUserAdmin(UserAdmin):
    """Django's user admin plus the second factor: a column, and a reset for superusers."""

    list_display = [*UserAdmin.list_display, second_factor]
    actions = ["reset_second_factor"]

    def has_reset_second_factor_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    @admin.action(
        description="Reset second factor of the selected users (they enrol again)",
        permissions=["reset_second_factor"],
    )
    def reset_second_factor(self, request, queryset):
        for user in queryset:
            services.mfa_devices_reset(user=user, actor=admin_actor(request))
        self.message_user(request, f"Second factor reset for {queryset.count()} user(s).", messages.SUCCESS)


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, PaydeskUserAdmin)
