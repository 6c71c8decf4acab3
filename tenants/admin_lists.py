"""Admin lists that cost the same at a million rows as at ten thousand.

Besides its page of rows, a Django changelist runs a count for the paginator, queries for
the sidebar filters' choices, and the date bar's; at scale each of those reads every row
of the tenant (docs/architecture.md, "Admin lists at any size"). Every admin of a table
that grows with traffic (pay sessions, reconciliation items, the Stripe mirror, the audit
log, export jobs and deliveries) takes `ScalableListMixin`, which:

- counts at most COUNT_CAP + 1 rows (`SELECT COUNT(*) FROM (… LIMIT 10001)`), and says
  "10,000+" beyond: never a COUNT(*) of the whole table;
- offers pages up to the cap only (a bounded offset: the deepest page reads 10,000
  entries of an index, whatever the table's size; narrower filters reach older rows);
- never computes facet counts, and has no date bar (a date *range* filter needs no
  query to draw);
- expects filters whose choices come from code (`choices_filter`, `TenantListFilter`) or
  from small tables (connectors), never `AllValuesFieldListFilter` or
  `RelatedOnlyFieldListFilter`, which run `SELECT DISTINCT` over the list's table
  (tests/tenants/test_admin_lists.py checks every such admin).

Sorting is left to the columns an index serves (`sortable_by`), set by each admin.
"""

from django.contrib import admin
from django.contrib.admin.options import ShowFacets
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.utils.functional import cached_property

from tenants.admin_scoping import tenant_ids
from tenants.models import Tenant

COUNT_CAP = 10_000


class AtLeast(int):
    """A count that stopped at the cap: compares as the cap, prints as "10,000+"."""

    def __str__(self) -> str:
        return f"{int(self):,}+"


class CappedPaginator(Paginator):
    """Counts at most `cap` + 1 rows; pages exist up to the cap only."""

    cap = COUNT_CAP
    capped = False

    @cached_property
    def count(self) -> int:
        # values("pk") keeps the ordering (the LIMIT must take the first rows of the list's
        # own index order) and drops the select_related joins the page needs.
        counted = self.object_list.values("pk")[: self.cap + 1].count()
        self.capped = counted > self.cap
        return min(counted, self.cap)


class CappedChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        if getattr(self.paginator, "capped", False):
            self.result_count = AtLeast(self.result_count)


class ScalableListMixin:
    """Put before `admin.ModelAdmin` on the admin of a table that grows with traffic."""

    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = ShowFacets.NEVER
    date_hierarchy = None

    def get_changelist(self, request, **kwargs):
        return CappedChangeList


def choices_filter(field: str, choices, *, title: str | None = None) -> type[admin.SimpleListFilter]:
    """A sidebar filter on `field` whose choices are given here (a list of values or of
    (value, label) pairs), not read from the table. The parameter is the field's name, as
    Django's own filter on it would use."""
    pairs = [c if isinstance(c, tuple) else (c, c) for c in choices]

    class ChoicesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            return pairs

        def queryset(self, request, queryset):
            value = self.value()
            return queryset if value is None else queryset.filter(**{field: value})

    ChoicesFilter.title = title or field.replace("_", " ")
    ChoicesFilter.__name__ = f"{field.title().replace('_', '')}Filter"
    return ChoicesFilter


class TenantListFilter(admin.SimpleListFilter):
    """The user's tenants (all of them for a superuser), from memberships: the tenants
    table is small, the list's is not. Same parameter as Django's related filter."""

    title = "tenant"
    parameter_name = "tenant__id__exact"
    tenant_field = "tenant"

    def lookups(self, request, model_admin):
        tenants = Tenant.objects.order_by("name")
        if not request.user.is_superuser:
            tenants = tenants.filter(pk__in=tenant_ids(request))
        return [(str(t.pk), t.name) for t in tenants]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        # The list is already scoped: another tenant's id finds nothing.
        return queryset.filter(**{f"{self.tenant_field}_id": int(value)}) if value.isdigit() else queryset.none()
