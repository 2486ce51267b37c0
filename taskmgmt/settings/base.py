"""Settings shared by every environment. Everything that differs comes from the environment."""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="dev-insecure-secret-key-change-me-0123456789abcdefghijklmnop")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files served from the app, not a CDN
    "django_celery_beat",
    "django_celery_results",
    "core",
    "accounts",
    "tasks_app",
    "reminders",
    "notifications",
    "webhooks",
    "analytics",
    "ops",
]

MIDDLEWARE = [
    "ops.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.throttling.RateLimitHeadersMiddleware",
    "core.exceptions.ApiErrorEnvelopeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Idempotency-Key on every API POST (after authentication and CSRF): core/idempotency.py.
    "core.idempotency.IdempotencyMiddleware",
]

ROOT_URLCONF = "taskmgmt.urls"
WSGI_APPLICATION = "taskmgmt.wsgi.application"
ASGI_APPLICATION = "taskmgmt.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
# A polling client's conditional list GET (core/fastpath.py) keeps one connection per web worker thread of its own,
# so a 304 does not pay for a new connection (PostgreSQL only; false: it uses the request's connection).
LIST_POLL_KEEP_CONNECTION = env.bool("LIST_POLL_KEEP_CONNECTION", default=True)
# Worker processes keep their connections across tasks (seconds; empty: CONN_MAX_AGE). A task costs a few ms of
# CPU without a new connection; core/worker.py applies it when a `celery worker` starts.
WORKER_CONN_MAX_AGE = env.int("WORKER_CONN_MAX_AGE", default=300) if env.str("WORKER_CONN_MAX_AGE", "300") else None
# With CONN_MAX_AGE > 0, a kept connection is checked before a request reuses it (a restarted server is survived).
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Behind PgBouncer in transaction pooling mode: CONN_MAX_AGE=0 and DISABLE_SERVER_SIDE_CURSORS=True
# (a named cursor would outlive the transaction that owns its server connection). docs/deployment.md.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool("DISABLE_SERVER_SIDE_CURSORS", default=False)
# The poll connection PREPAREs its two statements once and EXECUTEs them (no parsing or planning per poll); not
# behind PgBouncer's transaction pooling, where a session's prepared statements do not follow its client.
LIST_POLL_PREPARE = env.bool("LIST_POLL_PREPARE", default=not DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"])
# PostgreSQL: the server probes every session's client (TCP keepalives) and drops the session of one that
# vanished without closing (host down, link cut). Otherwise a worker cut off mid-transaction keeps its session,
# and the row locks it holds, for the kernel's default of over two hours, and the workers that retake its claims
# wait on those locks. Dropped after about 25 s. Behind a PgBouncer that refuses the `options` startup
# parameter, set DATABASE_SERVER_KEEPALIVES=false (PgBouncer's own tcp_keepalive settings then apply).
# core.beat's leader lock relies on the same figures.
PG_SERVER_KEEPALIVES = (
    "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3 -c tcp_user_timeout=25000"
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_SERVER_KEEPALIVES", default=True
):
    _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
    _pg_options["options"] = f"{_pg_options.get('options', '')} {PG_SERVER_KEEPALIVES}".strip()
    # And the client probes the server the same way (a database host that vanished fails the query, not hangs).
    for _key, _value in (
        ("keepalives", 1),
        ("keepalives_idle", 10),
        ("keepalives_interval", 5),
        ("keepalives_count", 3),
    ):
        _pg_options.setdefault(_key, _value)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL plus a busy timeout lets web, worker and beat share the file without "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
    DATABASES["default"]["TEST"] = {"NAME": env("TEST_SQLITE_NAME", default=str(VAR_DIR / "test.sqlite3"))}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
STATIC_ROOT = env("STATIC_ROOT", default=str(VAR_DIR / "static"))
MEDIA_URL = "media/"
MEDIA_ROOT = env("MEDIA_ROOT", default=str(VAR_DIR / "media"))

# --- Email -----------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="taskmgmt <noreply@localhost>")
# Absolute base URL used in emails (unsubscribe links, task links); `make run` sets it to where it serves.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
# Links in emails, for the front end a deployer runs: {site_url}, {task_id}, {project_id} are filled in.
# Defaults: the app's own small HTML pages (session login first, through LOGIN_URL).
NOTIFICATIONS_TASK_URL = env("NOTIFICATIONS_TASK_URL", default="{site_url}/tasks/{task_id}/")
NOTIFICATIONS_PREFERENCES_URL = env("NOTIFICATIONS_PREFERENCES_URL", default="{site_url}/notifications/preferences/")
LOGIN_URL = "rest_framework:login"

# --- REST framework -------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes anonymous requests 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies only (a form or multipart body is a 415): one typed shape, as the schema states it.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": [
        "core.filters.FilterBackend",
        "core.filters.StrictOrderingFilter",
    ],
    # Rates are in API_THROTTLE_RATES below (read per request); the token endpoint adds the strict `auth` scope.
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.UserThrottle", "core.throttling.AnonThrottle"],
    # Client IP for the per-IP scopes: REMOTE_ADDR, or the n-th address from the right of X-Forwarded-For when
    # n reverse proxies (set NUM_PROXIES) sit in front.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=None),
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    "DATETIME_FORMAT": "iso-8601",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "taskmgmt API",
    "DESCRIPTION": "Task management backend: projects, tasks, comments, notifications, webhooks, analytics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar (pinned in requirements/base.txt) under STATIC_URL: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Document the 4xx answers (drf-spectacular lists only successes): core/exceptions.py.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.exceptions.document_error_responses",
        "core.conditional.document_protocol_headers",
        "reminders.api.serializers.document_timing_choice",
    ],
}

# --- Redis / Celery --------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")

# --- Cache (throttle counters) ---------------------------------------------
# The Django cache on Redis; CACHE_URL may name another server. Short timeouts: if the cache does not answer,
# throttling lets requests through (core/throttling.py) rather than hanging them.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env("CACHE_URL", default=REDIS_URL),
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="taskmgmt"),
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}

# --- Throttling and API tokens ---------------------------------------------
# Rates "N/period" (s, min, hour, day; "100/5min" too); an empty value turns a scope off.
API_THROTTLE_RATES = {
    "user": env("THROTTLE_RATE_USER", default="1200/min"),  # authenticated requests, per user
    "anon": env("THROTTLE_RATE_ANON", default="120/min"),  # unauthenticated requests, per client IP
    "auth": env("THROTTLE_RATE_AUTH", default="10/min"),  # logins and failed token checks, per client IP
}
API_THROTTLE_CACHE = "default"
# A token made by the token endpoint (or without expires_in_days) expires after this; 0 days: never.
API_TOKEN_DEFAULT_TTL = timedelta(days=env.int("API_TOKEN_TTL_DAYS", default=90)) or None
API_TOKEN_MAX_PER_USER = env.int("API_TOKEN_MAX_PER_USER", default=50)
from taskmgmt.celery_settings import *  # noqa: E402, F403  (one place for all Celery configuration)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # trace= is the OpenTelemetry trace id of the request or task (0 outside one; see ops/tracing.py).
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s trace=%(otelTraceID)s %(message)s"}},
    "filters": {"trace": {"()": "ops.tracing.TraceIdFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["trace"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # httpx (tests, benches) logs every request's full URL at INFO: webhook URLs stay out of logs.
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# --- Operations (ops/, core/health.py, docs/operations.md) ----------------------
# A bearer token for /metrics and /healthz/status (staff sessions work without it). Empty: staff only.
OPS_TOKEN = env("OPS_TOKEN", default="")
# Serve /metrics from the web process (set False to scrape only the per-process ports).
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=True)
# A Celery worker serves its metrics on this port (0: off). One port per worker process on a host.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
WORKER_METRICS_ADDR = env("WORKER_METRICS_ADDR", default="127.0.0.1")

# Celery's own log lines (worker, beat) carry the trace id when tracing is on.
if env("OTEL_EXPORTER_OTLP_ENDPOINT", default=""):
    CELERY_WORKER_LOG_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s trace=%(otelTraceID)s"
    CELERY_WORKER_TASK_LOG_FORMAT = (
        "[%(asctime)s: %(levelname)s/%(processName)s] %(task_name)s[%(task_id)s]: %(message)s trace=%(otelTraceID)s"
    )

# Timings of the feature apps, settable from the environment in every settings module (README
# "Configuration"); unset, each app's conf.py default applies.
for _name, _cast in (
    ("WEBHOOK_TIMEOUT_SECONDS", float),
    ("WEBHOOK_RETRY_JITTER", float),
    ("WEBHOOK_LEASE_SECONDS", int),
    ("WEBHOOK_CONCURRENCY", int),
    ("WEBHOOK_BATCH_SIZE", int),
    ("WEBHOOK_REQUEUE_GRACE_SECONDS", int),
    ("WEBHOOK_MAX_COUNTDOWN_SECONDS", int),
    ("NOTIFICATIONS_EMAIL_STALE_SENDING_SECONDS", int),
    ("NOTIFICATIONS_EMAIL_RETRY_BASE_SECONDS", float),
    ("NOTIFICATIONS_EMAIL_MAX_ATTEMPTS", int),
    ("NOTIFICATIONS_EMAIL_BATCH_SIZE", int),
    ("NOTIFICATIONS_EMAIL_COALESCE_SECONDS", int),
    ("NOTIFICATIONS_EMAIL_LINGER_SECONDS", float),
    ("REMINDER_CLAIM_STALE_SECONDS", int),
):
    if env.str(_name, default=""):
        globals()[_name] = _cast(env.str(_name))
if env.str("WEBHOOK_RETRY_SCHEDULE", default=""):
    WEBHOOK_RETRY_SCHEDULE = tuple(float(s) for s in env.str("WEBHOOK_RETRY_SCHEDULE").split(","))

# --- API protocol (README "API protocol"): defaults in core/conf.py, the environment may set them.
for _name, _cast in (
    ("API_REQUIRE_IF_MATCH", env.bool),
    ("IDEMPOTENCY_TTL_SECONDS", env.int),
    ("IDEMPOTENCY_LOCK_SECONDS", env.int),
):
    if env.str(_name, default=""):
        globals()[_name] = _cast(_name)

# How long an analytics snapshot may be served before it is recomputed on demand.
ANALYTICS_SNAPSHOT_MAX_AGE = timedelta(minutes=env.int("ANALYTICS_SNAPSHOT_MAX_AGE_MINUTES", default=60))

# Webhook SSRF guard: networks admitted although special-purpose, e.g. WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32
# for a receiver on this machine. Empty: public addresses only (webhooks/ssrf.py).
WEBHOOK_ALLOWED_NETWORKS = env.list("WEBHOOK_ALLOWED_NETWORKS", default=[])
