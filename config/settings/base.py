"""Every Paydesk setting. Production differs only through environment variables
(listed, with a comment each, in .env.example)."""

from datetime import timedelta
from urllib.parse import urlsplit

from csp.constants import NONCE, NONE, SELF  # the quoted keywords 'none', 'self'
from django.core.exceptions import ImproperlyConfigured

from config.env import BASE_DIR, DEBUG, embedded_database_url, env, rate_setting, required
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
    "django_otp",  # second factor: devices, verification state in the session, throttling
    "django_otp_webauthn",  # passkeys and security keys as django-otp devices
    "axes",  # login lockout
    "csp",  # Content-Security-Policy with per-request nonces
    "tenants",
    "tenants.security",  # MFA enrolment and verification, lockout admin, session lifetime
    "connectors",
    "payments.outbox",
    "payments.rollup",
    "payments.sessions",
    "payments.refunds",
    "payments.ivr",
    "payments.reconciliation",
    "payments.reports",
    "payments.partner_webhooks",
    "payments.console",
    "simulators",  # dev tooling commands only: seed_demo, simulate_payment, simulate_ivr_call
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ApiInputLimits",  # API: 413 over PAYDESK_API_MAX_BODY_BYTES, 400 for NUL in the query
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below WhiteNoise: static files keep their long-lived caching; everything Django
    # renders is no-store (API responses carry payment data, admin pages too).
    "config.security.NoStoreMiddleware",
    "config.security.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "tenants.security.middleware.SessionLifetimeMiddleware",
    "tenants.security.middleware.RequireMFAMiddleware",
    "tenants.middleware.TenantTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: turns a lockout into its page
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The landing page, and project-wide overrides of third-party templates (the API
        # docs page, with CSP nonces).
        "DIRS": [BASE_DIR / "config" / "templates"],
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

# PostgreSQL only, one SQL dialect everywhere. Unset (DEBUG only): the embedded server
# that `make run` starts under var/ (simulators/postgres.py).
DATABASES = {"default": env.db_url_config(required("DATABASE_URL", dev_default=embedded_database_url()))}
if DATABASES["default"].get("ENGINE") != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://…).")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
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
# django-axes first: it refuses a locked-out username or address before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "admin:index"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
FORMAT_MODULE_PATH = ["config.formats"]  # times with seconds and zone (config/formats/en/formats.py)
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
    # Two choice sets are named "reason": an exception's keeps the name it was published
    # with, a refund's gets its own.
    "ENUM_NAME_OVERRIDES": {
        "ReasonEnum": "payments.reconciliation.models.ReconciliationItem.REASONS",
        "RefundReasonEnum": "payments.refunds.models.Refund.Reason",
    },
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- API limits: rate limits, body size, error documentation (issue 12) --------------

# Requests per API key, and per client address for requests without a valid key
# (tenants/auth.py), counted in the shared cache. "<n>/<s|min|hour|day>"; empty: no limit.
PAYDESK_API_RATE = rate_setting("PAYDESK_API_RATE", default="1200/min")
PAYDESK_API_ANON_RATE = rate_setting("PAYDESK_API_ANON_RATE", default="60/min")
# Proxies in front of Paydesk that append to X-Forwarded-For; 0: the client address is
# the connection's own (REMOTE_ADDR). A wrong number lets clients choose their address.
REST_FRAMEWORK["NUM_PROXIES"] = env.int("PAYDESK_NUM_PROXIES", default=0)
# An API request body above this answers 413 payload_too_large (config/middleware.py).
PAYDESK_API_MAX_BODY_BYTES = env.int("PAYDESK_API_MAX_BODY_BYTES", default=2**20)
# JSON bodies: nesting and strings bounded (core/safejson.py); JSON answers whatever Accept says.
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["config.api.JSONParser"]
REST_FRAMEWORK["DEFAULT_CONTENT_NEGOTIATION_CLASS"] = "config.api.JSONOnlyNegotiation"
# The error responses every operation can give, documented once (config/schema.py).
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "config.schema.document_errors",
]

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

# Sessions (PCI DSS 8.2.8): a session idle this long is over; each request renews it
# (the session row and cookie get a fresh expiry). Whatever the activity, a session ends
# PAYDESK_SESSION_MAX_AGE_SECONDS after its login (tenants/security/middleware.py).
PAYDESK_SESSION_IDLE_SECONDS = env.int("PAYDESK_SESSION_IDLE_SECONDS", default=15 * 60)
PAYDESK_SESSION_MAX_AGE_SECONDS = env.int("PAYDESK_SESSION_MAX_AGE_SECONDS", default=12 * 3600)
SESSION_COOKIE_AGE = PAYDESK_SESSION_IDLE_SECONDS
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Second factor (PCI DSS 8.4.2). When on, a signed-in user without a confirmed device is
# sent to enrol before any page under PAYDESK_MFA_PROTECTED_PATHS; a user who has a
# device is always asked for it, whatever this says. Off on the first run (DEBUG).
PAYDESK_REQUIRE_MFA = env.bool("PAYDESK_REQUIRE_MFA", default=not DEBUG)
# Path prefixes whose pages need a verified second factor (the admin, the agent console).
PAYDESK_MFA_PROTECTED_PATHS = ["/admin/", "/console/"]
# How many single-use recovery codes a user gets at a time.
PAYDESK_MFA_RECOVERY_CODES = 10
# The issuer shown in authenticator apps.
OTP_TOTP_ISSUER = env.str("PAYDESK_MFA_ISSUER", default="Paydesk")
# Failed codes make the next try wait 1, 2, 4, 8… seconds (django-otp's throttling).
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# WebAuthn (passkeys, security keys). The relying party ID is the host name the admin is
# served on; a passkey registered for one ID works only there. Browsers refuse an IP
# address, so the first run uses localhost (open http://localhost:8000/admin/).
OTP_WEBAUTHN_RP_NAME = "Paydesk"
OTP_WEBAUTHN_RP_ID = env.str(
    "PAYDESK_WEBAUTHN_RP_ID", default="localhost" if DEBUG else urlsplit(PAYDESK_PUBLIC_BASE_URL).hostname
)
OTP_WEBAUTHN_ALLOWED_ORIGINS = env.list(
    "PAYDESK_WEBAUTHN_ORIGINS", default=["http://localhost:8000"] if DEBUG else [PAYDESK_PUBLIC_BASE_URL]
)
# A passkey is a second factor here, never a way around the password (and the lockout).
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False

# Lockout (PCI DSS 8.3.4), django-axes: after this many failed logins for one username, or
# from one address, every login for it is refused for PAYDESK_LOGIN_LOCKOUT_SECONDS, the
# right password included. Failed second-factor codes count too. A superuser lifts a lock
# in the admin (Security › Login locks).
PAYDESK_LOGIN_FAILURE_LIMIT = env.int("PAYDESK_LOGIN_FAILURE_LIMIT", default=10)
PAYDESK_LOGIN_LOCKOUT_SECONDS = env.int("PAYDESK_LOGIN_LOCKOUT_SECONDS", default=30 * 60)
AXES_FAILURE_LIMIT = PAYDESK_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=PAYDESK_LOGIN_LOCKOUT_SECONDS)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one reaching the limit locks
AXES_RESET_ON_SUCCESS = True
# The lock runs from the failure that set it: tries during the lock do not extend it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "tenants.security.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "tenants.security.lockout.client_ip"
AXES_ENABLE_ADMIN = False  # tenants/security/admin.py shows the locks, and lifting one is audited
AXES_DISABLE_ACCESS_LOG = True  # successful logins are in the audit log already
AXES_VERBOSE = False

# Content-Security-Policy (django-csp). Scripts and styles come from this origin, or are
# inline with the request's nonce ({{ request.csp_nonce }}); nothing else runs. A view that
# may be framed (an embedded console) uses config.security.allow_framing.
# CSP keywords may be written bare (none, self): .env files tend to lose the quotes.
PAYDESK_CSP_FRAME_ANCESTORS = [
    f"'{source}'" if source in ("none", "self") else source
    for source in env.list("PAYDESK_CSP_FRAME_ANCESTORS", default=["none"])
]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],  # Swagger UI and the admin draw icons from data: URIs
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": PAYDESK_CSP_FRAME_ANCESTORS,
    }
}

LOGGING = logging_config(level=env.str("LOG_LEVEL", default="INFO"))

# --- Paydesk --------------------------------------------------------------------------

# Requests under this prefix are the partner API (no-store whatever the view says).
PAYDESK_API_PATH_PREFIX = "/api/"

# API keys' last_used_at is written at most this often, to keep writes off the hot path.
PAYDESK_API_KEY_TOUCH_SECONDS = 60

# A pay session with no request and no callback for this long is expired. A phone
# payment rarely takes more than a few minutes; 30 leaves room for a slow caller.
PAYDESK_PAY_SESSION_EXPIRY_SECONDS = env.int("PAYDESK_PAY_SESSION_EXPIRY_SECONDS", default=30 * 60)

# --- Agent console (docs/console.md) ----------------------------------------------------

# The session page asks for news this often. A callback shows within this much of being
# applied (plus a request's time): the issue asks for one second.
PAYDESK_CONSOLE_POLL_MS = env.int("PAYDESK_CONSOLE_POLL_MS", default=500)
# A one-time link to the embedded console works once, within this many seconds.
PAYDESK_CONSOLE_LINK_SECONDS = env.int("PAYDESK_CONSOLE_LINK_SECONDS", default=300)
# An embedded page's own token lives this long; the page's polls renew it while it is open.
PAYDESK_CONSOLE_PAGE_TOKEN_SECONDS = env.int("PAYDESK_CONSOLE_PAGE_TOKEN_SECONDS", default=900)

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
    # Every 30 seconds: retries further off than a countdown may wait for (their times
    # are minutes to hours apart, so 30 s is precise enough), attempts whose worker died,
    # and events whose wake-up was lost. One indexed query each when nothing is due.
    "webhooks-sweep": {"task": "payments.partner_webhooks.tasks.sweep_webhooks", "schedule": 30.0},
    # Daily: events are listed for 30 days; a day's precision is enough.
    "webhooks-purge": {"task": "payments.partner_webhooks.tasks.purge_webhook_history", "schedule": 86400.0},
    # Once a minute: a pending refund is first looked at again a minute after Stripe
    # answered (then at doubling intervals, payments/refunds/services.py); one query on a
    # partial index when none is due.
    "refunds-follow-up": {"task": "payments.refunds.tasks.follow_up_due_refunds", "schedule": 60.0},
    # Once a minute: the daily rollup of a new tenant, or of one whose time zone changed, is
    # built within a minute (reports read the rows meanwhile); otherwise one query over the
    # tenants finds nothing to do.
    "rollup-rebuild-stale": {"task": "payments.rollup.tasks.rebuild_stale_rollups", "schedule": 60.0},
}

# --- Refunds --------------------------------------------------------------------------

# A refund Stripe did not answer for (unreachable, timed out) stays pending, holding its
# amount, this long for a retry with the same Idempotency-Key; then the follow-up looks
# for it in Stripe and, if Stripe never got it, cancels it (nothing was refunded).
PAYDESK_REFUND_IN_DOUBT_SECONDS = env.int("PAYDESK_REFUND_IN_DOUBT_SECONDS", default=900)

# --- Reconciliation -------------------------------------------------------------------

# A session is judged missing in Stripe only this long after a complete sync began after
# it ended; before that it is pending (Stripe lists can lag, callbacks can be in flight).
PAYDESK_RECONCILIATION_GRACE_SECONDS = env.int("PAYDESK_RECONCILIATION_GRACE_SECONDS", default=600)
# Reconcile a connector within seconds of a payment's result there (one queued run per
# connector at a time), besides the schedule and Stripe's webhooks.
PAYDESK_RECONCILIATION_AFTER_RESULT = env.bool("PAYDESK_RECONCILIATION_AFTER_RESULT", default=True)
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

# --- Partner webhooks (docs/partner-webhooks.md) ---------------------------------------

# http:// endpoint URLs (default: only with DEBUG). Production sends over TLS only.
PAYDESK_WEBHOOKS_ALLOW_INSECURE_URLS = env.bool("PAYDESK_WEBHOOKS_ALLOW_INSECURE_URLS", default=DEBUG)
# Endpoints on loopback, private, link-local or metadata addresses (default: only with
# DEBUG, and in tests). Off in production: a partner's URL must not reach our network.
PAYDESK_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env.bool("PAYDESK_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default=DEBUG)
# Seconds to connect, and to wait for each read of the answer.
PAYDESK_WEBHOOKS_CONNECT_TIMEOUT = env.float("PAYDESK_WEBHOOKS_CONNECT_TIMEOUT", default=3.0)
PAYDESK_WEBHOOKS_READ_TIMEOUT = env.float("PAYDESK_WEBHOOKS_READ_TIMEOUT", default=5.0)
# Bytes of a receiver's answer that are read and kept in the delivery log.
PAYDESK_WEBHOOKS_RESPONSE_BODY_LIMIT = 1024
# Retries: exponential from this many seconds, doubling, capped, with ±20% jitter, for
# the window after the first attempt; then the delivery fails. 30 s doubling to 6 h gives
# about 20 attempts in three days.
PAYDESK_WEBHOOKS_RETRY_BASE_SECONDS = env.float("PAYDESK_WEBHOOKS_RETRY_BASE_SECONDS", default=30.0)
PAYDESK_WEBHOOKS_RETRY_MAX_DELAY_SECONDS = env.float("PAYDESK_WEBHOOKS_RETRY_MAX_DELAY_SECONDS", default=6 * 3600.0)
PAYDESK_WEBHOOKS_RETRY_WINDOW_SECONDS = env.int("PAYDESK_WEBHOOKS_RETRY_WINDOW_SECONDS", default=3 * 86400)
# An endpoint that has not had one success for this long is disabled (owners emailed).
PAYDESK_WEBHOOKS_DISABLE_AFTER_SECONDS = env.int("PAYDESK_WEBHOOKS_DISABLE_AFTER_SECONDS", default=3 * 86400)
# After a rotation the previous secret signs beside the new one for this long.
PAYDESK_WEBHOOKS_SECRET_OVERLAP_SECONDS = 24 * 3600
# Retries due within this many seconds are queued with a countdown; later ones are sent
# by the sweep (a countdown past the broker's visibility timeout would be redelivered).
PAYDESK_WEBHOOKS_COUNTDOWN_MAX_SECONDS = 300
# Requests a sender makes at once to one endpoint (events of one pay session stay in order).
PAYDESK_WEBHOOKS_SEND_THREADS = env.int("PAYDESK_WEBHOOKS_SEND_THREADS", default=4)
# Days events are kept and listed (GET /api/v1/events/), with their deliveries.
PAYDESK_WEBHOOKS_EVENT_RETENTION_DAYS = 30
