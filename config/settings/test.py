"""Speed-only overrides for the test suite. Real PostgreSQL and Redis, as in production.

The PostgreSQL is the one at PAYDESK_TEST_PG_HOST:PAYDESK_TEST_PG_PORT (127.0.0.1:5432),
unless DATABASE_URL names another: `make test` sets it to the embedded server
(simulators/postgres.py) when nothing answers there."""

import os

os.environ.setdefault(
    "DATABASE_URL",
    "postgres://postgres@{}:{}/paydesk".format(
        os.environ.get("PAYDESK_TEST_PG_HOST", "127.0.0.1"), os.environ.get("PAYDESK_TEST_PG_PORT", "5432")
    ),
)
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")

from config.settings.base import *  # noqa: E402,F403

# pytest-xdist runs test processes side by side on one Redis database: each its own keys.
CACHES["default"]["KEY_PREFIX"] = "test-" + os.environ.get("PYTEST_XDIST_WORKER", "main")  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed: tests only
CELERY_TASK_ALWAYS_EAGER = True  # tasks run in the test's own transaction
SECURE_SSL_REDIRECT = False
PAYDESK_PUBLIC_BASE_URL = "http://testserver"
TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # tests point it at a peer; never the real one
STRIPE_API_BASE_URL = "http://127.0.0.1:9"
# The browser tests' live server answers in threads; a connection kept open there would
# outlive its test and stop the test database from being dropped at the end.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# Tests deliver webhooks to receivers on loopback, over http; tests of the refusals turn these off.
PAYDESK_WEBHOOKS_ALLOW_INSECURE_URLS = True
PAYDESK_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
# Tests choose their Stripe peer per test: a test that wants a payment's result to start a
# reconciliation turns it on (tests/reconciliation/test_reconcile_soon.py).
PAYDESK_RECONCILIATION_AFTER_RESULT = False
