"""The reconciliation schedule, as django-celery-beat rows: editable in the admin
(Periodic tasks), and kept across restarts. Entries put in CELERY_BEAT_SCHEDULE would be
written over by beat at every start, undoing an operator's change; rows created once here
are not. An existing row of the same name is left as the operator made it.

* Incremental, every 5 minutes: webhooks bring news within seconds, so this run is the
  safety net for events that never arrive. Five minutes bounds that delay, matches the
  default grace before a session may be called missing (10 minutes), and costs one list
  request per list per connector when little happened.
* Nightly, at 03:17 UTC: a wider window (14 days; payouts 10, disputes 120) re-reads what
  changes long after creation (a charge settling, a balance transaction becoming
  available, a payout paid, a dispute decided) and re-judges every session. At night
  because it reads more, off the hour because everyone else's cron runs on it.
"""

from django.db import migrations

TASK = "payments.reconciliation.tasks.sync_all_connectors"
ENTRIES = {
    "reconciliation: incremental sync (every 5 minutes)": {"every": 5, "mode": "incremental"},
    "reconciliation: nightly wide sync (03:17 UTC)": {"crontab": ("17", "3"), "mode": "nightly"},
}


def install(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    for name, entry in ENTRIES.items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        schedule = {}
        if "every" in entry:
            schedule["interval"], _ = IntervalSchedule.objects.get_or_create(every=entry["every"], period="minutes")
        else:
            minute, hour = entry["crontab"]
            schedule["crontab"], _ = CrontabSchedule.objects.get_or_create(
                minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
            )
        PeriodicTask.objects.create(
            name=name, task=TASK, kwargs='{"mode": "%s"}' % entry["mode"], enabled=True,
            description="Installed by payments/reconciliation/migrations/0002_beat_schedule.py; see its docstring.",
            **schedule,
        )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=list(ENTRIES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, remove)]
