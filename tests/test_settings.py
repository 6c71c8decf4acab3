"""Start-up behaviour of the settings, in a fresh interpreter each time."""

import subprocess
import sys

from django.conf import settings as django_settings

PRODUCTION_ENV = {
    "PATH": "/usr/bin:/bin",
    "DEBUG": "False",
    "DJANGO_SECRET_KEY": "x7#k2!pQz9@Lm4$Wv8^Rt1&Yb6*Nc3(Hd0)Fg5_Js2+Ua9=Ke7-Ol4~Ip1",
    "ALLOWED_HOSTS": "paydesk.example.com",
    "PAYDESK_PUBLIC_BASE_URL": "https://paydesk.example.com",
    "PAYDESK_ENCRYPTION_KEYS": "etGaM9T3tmq-IbJQA0r5cu3bMaF4jlJl-I9qgCvA_ec=",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
}


def _django(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], capture_output=True, text=True, env=env)


def test_production_settings_pass_check_deploy():
    proc = _django(["check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout


def test_each_missing_production_secret_stops_start_up_naming_it():
    for name in [
        "DJANGO_SECRET_KEY",
        "PAYDESK_ENCRYPTION_KEYS",
        "PAYDESK_PUBLIC_BASE_URL",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "REDIS_URL",
    ]:
        env = {k: v for k, v in PRODUCTION_ENV.items() if k != name}
        proc = _django(["check"], env)
        assert proc.returncode != 0, name
        assert name in proc.stderr, (name, proc.stderr[-500:])


def test_the_first_run_needs_no_environment_and_points_at_the_embedded_postgresql_and_the_simulators():
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='config.settings.base';django.setup();"
            "from django.conf import settings as s;d=s.DATABASES['default'];"
            "print(d['ENGINE'], d['NAME'], d['OPTIONS']['host'], s.CELERY_TASK_ALWAYS_EAGER,"
            " s.TWILIO_API_BASE_URL, s.STRIPE_API_BASE_URL)",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    engine, name, socket_dir, eager, twilio, stripe = proc.stdout.split()
    assert (engine, name, eager) == ("django.db.backends.postgresql", "paydesk", "True")
    assert socket_dir == str(django_settings.BASE_DIR / "var" / "postgres")
    assert twilio.startswith("http://127.0.0.1") and stripe.startswith("http://127.0.0.1")


def test_a_database_url_that_is_not_postgresql_stops_start_up():
    proc = _django(["check"], {**PRODUCTION_ENV, "DEBUG": "True", "DATABASE_URL": "sqlite:///db.sqlite3"})
    assert proc.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in proc.stderr


def test_tests_never_point_at_the_real_providers():
    assert "twilio.com" not in django_settings.TWILIO_API_BASE_URL
    assert "stripe.com" not in django_settings.STRIPE_API_BASE_URL


def test_a_4xx_is_logged_once():
    script = (
        "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='config.settings.base';django.setup();"
        "from django.test import Client;from django.test.utils import setup_test_environment;"
        "setup_test_environment();print(Client().get('/no-such-page/').status_code)"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert proc.stdout.strip() == "404", proc.stderr
    assert proc.stderr.count("Not Found: /no-such-page/") == 1, proc.stderr
