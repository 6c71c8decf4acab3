"""SyncCursor.supported marked a list the server did not have. Every list the sync reads
exists on Stripe, and a key that may not read one is a permission error (the connector
turns unhealthy), so nothing sets or reads the flag any more."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0002_beat_schedule"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="synccursor",
            name="supported",
        ),
    ]
