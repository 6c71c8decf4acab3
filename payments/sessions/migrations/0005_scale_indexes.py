"""Indexes that lead with the tenant and serve the lists' order under each filter, and the
admin search by last 4 and by IVR reference (issue: scale). Built concurrently on
PostgreSQL (config/migration_ops.py): the table holds every tenant's history."""

import django.db.models.fields.json
from django.db import migrations, models

from config.migration_ops import AddIndexConcurrently, RemoveIndexConcurrently


def newest(name, *fields):
    return AddIndexConcurrently(
        model_name="paysession", index=models.Index(fields=["tenant", *fields, "-created_at", "-id"], name=name)
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("payments", "0004_channel_labels"),
    ]

    operations = [
        newest("pay_session_tenant_newest"),
        newest("pay_session_tenant_status", "status"),
        newest("pay_session_tenant_connector", "connector"),
        newest("pay_session_tenant_channel", "channel"),
        newest("pay_session_tenant_result", "result"),
        newest("pay_session_tenant_last4", "card_last4"),
        AddIndexConcurrently(
            model_name="paysession",
            index=models.Index(
                models.F("tenant"),
                django.db.models.fields.json.KeyTextTransform("reference", "parameter"),
                name="pay_session_tenant_reference",
            ),
        ),
        # Served by the new ones: (tenant, created_at) without the id that breaks ties, a
        # status index across tenants, and last 4 across tenants (1 in 10,000 of everyone's).
        RemoveIndexConcurrently(model_name="paysession", name="payments_pa_tenant__4992b9_idx"),
        migrations.AlterField(
            model_name="paysession",
            name="card_last4",
            field=models.CharField(blank=True, max_length=4),
        ),
        migrations.AlterField(
            model_name="paysession",
            name="status",
            field=models.CharField(
                choices=[
                    ("created", "Created"),
                    ("capturing", "Capturing"),
                    ("ready", "Ready"),
                    ("completing", "Completing"),
                    ("succeeded", "Succeeded"),
                    ("failed", "Failed"),
                    ("cancelled", "Cancelled"),
                    ("expired", "Expired"),
                ],
                default="created",
                max_length=16,
            ),
        ),
    ]
