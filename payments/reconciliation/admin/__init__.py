"""The reconciliation admin: the exceptions queue (resolved with a note, audited), each
connector's reconciliation health with "reconcile now", per-session states, read-only
mirror lists, and the panel the pay-session page shows. Everything is scoped to the
user's tenants (tenants.admin_scoping)."""

from payments.reconciliation.admin import connectors, mirror, queue  # noqa: F401 - registers the admins
from payments.reconciliation.admin.panel import reconciliation_panel

__all__ = ["reconciliation_panel"]
