"""What every tenant-owned admin shares: tenant scoping, membership-based access, and
forms that save through a service.

Access in the admin comes from Membership rows, not from Django's model permissions:
superusers see everything; any other staff user sees the rows of the tenants they are a
member of, and may add, change or delete them only with a role in `write_roles`
(owner or admin by default). Another tenant's object does not exist for them: its
change, delete and history URLs answer 404, as in the API.
"""

from django import forms
from django.apps import apps
from django.contrib.admin.options import TO_FIELD_VAR
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404

from tenants.models import MANAGER_ROLES, Membership, Tenant
from tenants.services import Actor


def admin_actor(request) -> Actor:
    return Actor.for_user(request.user, ip_address=request.META.get("REMOTE_ADDR"))


def tenant_roles(request) -> dict[int, str]:
    """{tenant_id: role} for the request's user, read once per request."""
    roles = getattr(request, "_paydesk_tenant_roles", None)
    if roles is None:
        user = request.user
        roles = {}
        if user.is_authenticated and user.is_active:
            roles = dict(Membership.objects.filter(user=user).values_list("tenant_id", "role"))
        request._paydesk_tenant_roles = roles
    return roles


def tenant_ids(request, roles=None) -> set[int]:
    """The tenants the user is a member of, with one of `roles` when given."""
    return {tid for tid, role in tenant_roles(request).items() if roles is None or role in roles}


class ReadOnlyAdminMixin:
    """Put first among the bases: nobody, superusers included, adds, changes or deletes
    rows here (logs, mirrors, money and state that only services move)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TenantScopedAdminMixin:
    """Put before `admin.ModelAdmin`. `tenant_field` is the ORM path from the model to its
    Tenant ("tenant", "connector__tenant", or "pk" for Tenant itself)."""

    tenant_field = "tenant"
    write_roles = MANAGER_ROLES

    # --- Scoping ----------------------------------------------------------------------

    def scope_queryset(self, request, queryset, *, roles=None):
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.tenant_field}__in": tenant_ids(request, roles)})

    def writable_queryset(self, request, queryset):
        """The rows of `queryset` the user may change: what admin actions act on."""
        return self.scope_queryset(request, queryset, roles=self.write_roles)

    def tenant_id_of(self, obj) -> int | None:
        *path, last = self.tenant_field.split("__")
        for name in path:
            obj = getattr(obj, name)
        if last == "pk":
            return obj.pk
        return getattr(obj, obj._meta.get_field(last).attname)

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def get_search_results(self, request, queryset, search_term):
        queryset = self.scope_queryset(request, queryset)
        source_admin = self._autocomplete_source_admin(request)
        if source_admin is not None and not request.user.is_superuser:
            # An autocomplete fills a form's select: offer exactly what that form accepts.
            roles = getattr(source_admin, "write_roles", MANAGER_ROLES)
            queryset = self.scope_queryset(request, queryset, roles=roles)
        return super().get_search_results(request, queryset, search_term)

    def _autocomplete_source_admin(self, request):
        """The admin whose form an autocomplete request fills, if this is one."""
        match = getattr(request, "resolver_match", None)
        if match is None or match.url_name != "autocomplete":
            return None
        try:
            model = apps.get_model(request.GET.get("app_label", ""), request.GET.get("model_name", ""))
        except (LookupError, ValueError):
            return None
        return self.admin_site._registry.get(model)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Tenant and not request.user.is_superuser:
            # A tenant is picked only on forms that write; offer the tenants the user manages.
            kwargs["queryset"] = Tenant.objects.filter(pk__in=tenant_ids(request, self.write_roles))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if self.tenant_field == "tenant" and "tenant" not in initial and not request.user.is_superuser:
            manageable = tenant_ids(request, self.write_roles)
            if len(manageable) == 1:
                initial["tenant"] = next(iter(manageable))
        return initial

    # --- Permissions: from memberships ------------------------------------------------

    def _allowed(self, request, obj, roles) -> bool:
        if request.user.is_superuser:
            return True
        ids = tenant_ids(request, roles)
        return bool(ids) if obj is None else self.tenant_id_of(obj) in ids

    def has_module_permission(self, request):
        return self._allowed(request, None, None)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj, None)

    def has_add_permission(self, request, obj=None):
        return self._allowed(request, None, self.write_roles)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj, self.write_roles)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj, self.write_roles)

    # --- Another tenant's object answers 404 ------------------------------------------

    def _raise_404_unless_visible(self, request, object_id) -> None:
        # Django checks the user's permission before the object's existence, which would
        # answer 403 to a view-only member for another tenant's object; look it up first.
        to_field = request.POST.get(TO_FIELD_VAR, request.GET.get(TO_FIELD_VAR))
        if to_field and not self.to_field_allowed(request, to_field):
            return  # Django refuses it
        if self.get_object(request, unquote(object_id), to_field) is None:
            raise Http404("No such object.")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id is not None and "_saveasnew" not in request.POST:
            self._raise_404_unless_visible(request, object_id)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._raise_404_unless_visible(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django redirects to the admin index; another tenant's object must not exist.
        raise Http404("No such object.")


# --- Forms that save through a service ------------------------------------------------

# Secrets are write-only: the input never renders a value, not even the one just rejected.
SECRET_WIDGET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


def ending(last4: str) -> str:
    """A stored secret as the admin shows it: its last 4 characters only."""
    return f"…{last4}" if last4 else "—"


class ServiceModelForm(forms.ModelForm):
    """A ModelForm whose model validation and save are a service call.

    The service runs when the form is validated, inside a savepoint (and the admin's
    transaction), so a ValidationError it raises lands on the form's fields and nothing is
    saved; ModelForm's own instance validation is skipped because the service runs it.
    Subclasses implement `save_via_service(data) -> instance`; `self.actor` is set by
    ServiceFormAdminMixin.get_form.
    """

    actor: Actor | None = None

    def save_via_service(self, data: dict):
        raise NotImplementedError

    def _post_clean(self):
        if self._errors:
            return
        try:
            with transaction.atomic():
                self.instance = self.save_via_service(self.cleaned_data)
        except ValidationError as exc:
            self.add_service_errors(exc)

    def add_service_errors(self, exc: ValidationError) -> None:
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for field, errors in exc.error_dict.items():
            if field in self.fields:
                self.add_error(field, errors)
            else:  # a field this form does not show (read-only here)
                label = field.replace("_", " ").capitalize()
                self.add_error(None, [f"{label}: {message}" for e in errors for message in e.messages])


class ServiceFormAdminMixin:
    """Admin side of ServiceModelForm: hands the form its actor; the form has saved."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # modelform_factory builds a new class on each call: the attribute is this request's.
        form.actor = admin_actor(request)
        return form

    def save_model(self, request, obj, form, change):
        if not isinstance(form, ServiceModelForm):
            super().save_model(request, obj, form, change)
        # else: the service saved it while the form was validated.
