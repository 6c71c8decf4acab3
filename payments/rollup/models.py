"""The daily rollup: one row per tenant, local day, connector and currency.

Amounts are minor units in the row's currency (gross: the sessions' currency; refunds:
the refunds'; fees and net: Stripe's settlement currency), so no row ever mixes two
currencies. `sources.py` says what each column sums and who keeps it current.
"""

from django.db import models

from connectors.models import ConnectorInstance
from tenants.models import Tenant


class DailyRollup(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    day = models.DateField(help_text="Local day, in RollupState.time_zone.")
    connector = models.ForeignKey(ConnectorInstance, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    sessions = models.BigIntegerField(default=0, help_text="Pay sessions created that day.")
    succeeded = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0, help_text="Failed, cancelled or expired.")
    failures = models.JSONField(default=dict, blank=True, help_text="{reason: count}; they sum to `failed`.")
    gross = models.BigIntegerField(default=0, help_text="Amounts of the succeeded sessions.")
    refunds = models.BigIntegerField(default=0, help_text="Stripe refunds made that day.")
    fees = models.BigIntegerField(default=0, help_text="Stripe's fees of that day's sessions' charges.")
    net = models.BigIntegerField(default=0, help_text="Stripe's net of that day's sessions' charges.")

    class Meta:
        constraints = [
            # Also the index every read uses: a tenant's days in a range.
            models.UniqueConstraint(fields=["tenant", "day", "connector", "currency"], name="rollup_daily_key")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.connector_id} {self.currency}"


class RollupState(models.Model):
    """Which time zone a tenant's rollup days are in, and when it was last built whole.

    Readers use the rollup only while its zone is the tenant's: after a change of time
    zone they read the rows until the rebuild (a task, within a minute) is done."""

    tenant = models.OneToOneField(Tenant, on_delete=models.PROTECT, related_name="+")
    time_zone = models.CharField(max_length=64)
    built_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.tenant_id} ({self.time_zone})"
