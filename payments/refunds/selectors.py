"""Reads of refunds, for this app and the layers above it. `tenant` is required wherever
rows are listed; totals take sessions the caller has already scoped."""

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import QuerySet, Sum
from django.shortcuts import get_object_or_404

from payments.refunds.models import Refund
from payments.refunds.services import refundable_problem
from payments.sessions.models import PaySession
from tenants.models import Tenant


def refund_list(*, tenant: Tenant) -> QuerySet[Refund]:
    return Refund.objects.filter(tenant=tenant).select_related(
        "session", "connector", "tenant", "requested_by_api_key", "requested_by_user"
    )


def refund_get(*, tenant: Tenant, uuid) -> Refund:
    """The tenant's refund, or 404: another tenant's refund does not exist for it."""
    return get_object_or_404(refund_list(tenant=tenant), uuid=uuid)


def session_refunds(*, tenant: Tenant, session: PaySession) -> QuerySet[Refund]:
    return refund_list(tenant=tenant).filter(session=session)


@dataclass(frozen=True)
class RefundTotals:
    """A session's refunds in minor units: succeeded, pending, and what a new refund may take."""

    refunded: int = 0
    pending: int = 0
    remaining: int = 0
    problem: str = ""  # why the session cannot be refunded at all, if it cannot

    @property
    def refundable(self) -> int:
        return 0 if self.problem else max(self.remaining, 0)


def refund_totals(sessions: list[PaySession]) -> dict[int, RefundTotals]:
    """{session id: RefundTotals} for sessions already read (one query for all of them)."""
    sums: dict[int, dict[str, int]] = defaultdict(dict)
    rows = (
        Refund.objects.filter(session_id__in=[s.pk for s in sessions], status__in=Refund.HOLDING)
        .values_list("session_id", "status")
        .annotate(total=Sum("amount_minor"))
        .order_by()
    )
    for session_id, status, total in rows:
        sums[session_id][status] = total or 0
    totals = {}
    for session in sessions:
        refunded = sums[session.pk].get(Refund.Status.SUCCEEDED, 0)
        pending = sums[session.pk].get(Refund.Status.PENDING, 0)
        totals[session.pk] = RefundTotals(
            refunded=refunded,
            pending=pending,
            remaining=(session.amount_minor or 0) - refunded - pending,
            problem=refundable_problem(session),
        )
    return totals


def refunds_by_session(*, tenant_id: int, session_ids: list[int]) -> dict[int, list[Refund]]:
    """The refunds of these sessions (for the reconciliation's judgement), by session id."""
    by_session: dict[int, list[Refund]] = defaultdict(list)
    for refund in Refund.objects.filter(tenant_id=tenant_id, session_id__in=session_ids).order_by("created_at", "pk"):
        by_session[refund.session_id].append(refund)
    return by_session
