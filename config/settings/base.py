"""Every Paydesk setting. Production differs only through environment variables
(listed, with a comment each, in .env.example)."""

from django.core.exceptions import ImproperlyConfigured

from config.env import BASE_DIR, DEBUG, env, required
from config.logging import logging_config

# --- Core -----------------------------------------------------------------------------

SECRET_KEY = required(
    "DJANGO_SECRET_KEY",
    dev_default="dev-only-insecure-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG",
)
ALLOWED_HOSTS = required("ALLOWED_HOSTS", dev_default=["127.0.0.1", "localhost", "testserver"], read=env.list)

# Absolute base URL that Twilio and Stripe reach us on: callback URLs are built from it,
# and Twilio signatures are checked against it (so a TLS-terminating proxy in front does
# not break validation).
PAYDESK_PUBLIC_BASE_URL = required("PAYDESK_PUBLIC_BASE_URL", dev_default="http://127.0.0.1:8000").rstrip("/")

# Provider base URLs. With DEBUG off they default to the real services; on the embedded
# first-run defaults they point at the bundled simulators (`make run` starts them), so a
# first look can never reach a real payment provider.
TWILIO_API_BASE_URL = env.str(
    "TWILIO_API_BASE_URL", default="http://127.0.0.1:8425" if DEBUG else "https://api.twilio.com"
).rstrip("/")
STRIPE_API_BASE_URL = env.str(
    "STRIPE_API_BASE_URL", default="http://127.0.0.1:8420" if DEBUG else "https://api.stripe.com"
).rstrip("/")

# Fernet keys, comma-separated, newest first. The development key below encrypts nothing
# that matters; production refuses to start without its own keys.
PAYDESK_ENCRYPTION_KEYS = required(
    "PAYDESK_ENCRYPTION_KEYS", dev_default="etGaM9T3tmq-IbJQA0r5cu3bMaF4jlJl-I9qgCvA_ec="
).split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "tenants",
    "connectors",
    "payments.rollup",
    "payments.sessions",
    "payments.ivr",
    "payments.reconciliation",
    "payments.reports",
    "simulators",  # dev tooling commands only: seed_demo, simulate_payment, simulate_ivr_call
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data -----------------------------------------------------------------------------

DATABASES = {
    "default": required(
        "DATABASE_URL", dev_default=env.db_url_config(f"sqlite:///{BASE_DIR / 'db.sqlite3'}"), read=env.db_url
    )
}
if not DEBUG and DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL when DEBUG is off.")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The first run writes from several threads at once (runserver serves Twilio's callbacks
    # while tasks run in-process). BEGIN IMMEDIATE takes the write lock when a transaction
    # starts, so it waits its turn; a deferred one that read first and then writes fails at
    # once with "database is locked". WAL lets reads go on meanwhile.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE", timeout=20, init_command="PRAGMA journal_mode=WAL;"
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Empty on the first run: a local-memory cache and in-process tasks instead.
REDIS_URL = required("REDIS_URL", dev_default="")
CACHES = {
    "default": (
        {"BACKEND": "config.cache.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Celery (config/celery.py reads every CELERY_* setting) ----------------------------

# Without a broker the first run executes tasks in-process, so it needs no Redis.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Tasks are idempotent (conditional updates, stored idempotency keys), so a task that dies
# mid-way is safely redelivered.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Auth, i18n, static ---------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- REST API -------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.auth.HasTenantScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.api.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Paydesk API",
    "DESCRIPTION": "Phone payments with Twilio <Pay>: tenants, connectors, pay sessions, reconciliation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- Security (production-like unless DEBUG) ------------------------------------------

SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("PAYDESK_TRUST_X_FORWARDED_PROTO", default=False) else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

LOGGING = logging_config(level=env.str("LOG_LEVEL", default="INFO"))

# --- Paydesk --------------------------------------------------------------------------

# API keys' last_used_at is written at most this often, to keep writes off the hot path.
PAYDESK_API_KEY_TOUCH_SECONDS = 60

# A pay session with no request and no callback for this long is expired. A phone
# payment rarely takes more than a few minutes; 30 leaves room for a slow caller.
PAYDESK_PAY_SESSION_EXPIRY_SECONDS = env.int("PAYDESK_PAY_SESSION_EXPIRY_SECONDS", default=30 * 60)

CELERY_BEAT_SCHEDULE = {
    # Once a minute: expiry only needs minute precision, and the query uses an index.
    "expire-pay-sessions": {"task": "payments.tasks.expire_pay_sessions", "schedule": 60.0},
    # Once a minute: a backstop for callbacks whose wake-up was lost (a task lost with the
    # broker, a cache outage); normally finds nothing, with one query on a partial index.
    "apply-pending-pay-events": {"task": "payments.tasks.apply_pending_pay_events", "schedule": 60.0},
    # Every 5 minutes: a scheduled report leaves within 5 minutes of its local time; one
    # indexed query when none is due.
    "reports-deliver-due": {"task": "payments.reports.tasks.enqueue_due_deliveries", "schedule": 300.0},
    # Hourly: export files are kept for days, so an hour's precision is enough; also fails
    # jobs whose worker died.
    "reports-expire-exports": {"task": "payments.reports.tasks.expire_export_jobs", "schedule": 3600.0},
    # Once a minute: the daily rollup of a new tenant, or of one whose time zone changed, is
    # built within a minute (reports read the rows meanwhile); otherwise one query over the
    # tenants finds nothing to do.
    "rollup-rebuild-stale": {"task": "payments.rollup.tasks.rebuild_stale_rollups", "schedule": 60.0},
}

# --- Reconciliation -------------------------------------------------------------------

# A session is judged missing in Stripe only this long after a complete sync began after
# it ended; before that it is pending (Stripe lists can lag, callbacks can be in flight).
PAYDESK_RECONCILIATION_GRACE_SECONDS = env.int("PAYDESK_RECONCILIATION_GRACE_SECONDS", default=600)
# The nightly run re-reads this many days of Stripe objects (settlements, captures, BT status).
PAYDESK_RECONCILIATION_NIGHTLY_DAYS = env.int("PAYDESK_RECONCILIATION_NIGHTLY_DAYS", default=14)

# --- Daily rollup -----------------------------------------------------------------------

# Time limit of rebuilding one tenant's rollup from its rows (its first build, after a
# change of time zone): about 4 s per million pay sessions on 2 cores (bench/scale.py).
PAYDESK_ROLLUP_REBUILD_TIME_LIMIT = env.int("PAYDESK_ROLLUP_REBUILD_TIME_LIMIT", default=3600)

# --- Reports --------------------------------------------------------------------------

# Where export jobs write their files (a folder per tenant); /var/ is git-ignored.
PAYDESK_REPORTS_EXPORT_DIR = env.path("PAYDESK_REPORTS_EXPORT_DIR", default=BASE_DIR / "var" / "exports")
# A report with more rows than this runs as an export job instead of answering at once.
PAYDESK_REPORTS_SYNC_MAX_ROWS = env.int("PAYDESK_REPORTS_SYNC_MAX_ROWS", default=50_000)
# The same for XLSX, which costs about four times CSV's CPU per row (bench/export.py).
PAYDESK_REPORTS_SYNC_MAX_ROWS_XLSX = env.int("PAYDESK_REPORTS_SYNC_MAX_ROWS_XLSX", default=10_000)
# Seconds a signed download link works (it also dies with the file).
PAYDESK_REPORTS_LINK_MAX_AGE = env.int("PAYDESK_REPORTS_LINK_MAX_AGE", default=24 * 3600)
# Seconds an export file is kept before the hourly sweep deletes it.
PAYDESK_REPORTS_FILE_TTL = env.int("PAYDESK_REPORTS_FILE_TTL", default=7 * 24 * 3600)
# The same request by the same requester within this many seconds gets the same job.
PAYDESK_REPORTS_JOB_REUSE_SECONDS = 900
# Time limit of an export/delivery task (a million-row XLSX takes minutes).
PAYDESK_REPORTS_JOB_TIME_LIMIT = env.int("PAYDESK_REPORTS_JOB_TIME_LIMIT", default=3600)
# Scheduled deliveries attach files up to this size; larger ones are sent as a link.
PAYDESK_REPORTS_EMAIL_ATTACH_MAX_BYTES = env.int("PAYDESK_REPORTS_EMAIL_ATTACH_MAX_BYTES", default=5 * 2**20)
# Email backend from one URL (smtp+tls://user:pass@host:587, consolemail://); console on the first run.
globals().update(env.email_url("EMAIL_URL", default="consolemail://"))  # EMAIL_BACKEND, EMAIL_HOST, …
# Sender of scheduled reports.
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Paydesk <reports@localhost>")
