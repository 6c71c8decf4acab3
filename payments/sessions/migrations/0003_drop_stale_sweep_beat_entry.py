"""Beat's entry for the removed task `apply_stale_pay_events`, superseded by
`apply_pending_pay_events` (CELERY_BEAT_SCHEDULE "apply-pending-pay-events"). The
database scheduler copies settings entries into its table but never removes one, so
without this beat would keep sending a task no worker knows."""

from django.db import migrations


def drop(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        task="payments.tasks.apply_stale_pay_events"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0002_pay_event_unapplied_index"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(drop, migrations.RunPython.noop)]
