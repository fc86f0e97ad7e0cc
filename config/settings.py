"""One settings module, driven by the environment.

Defaults give the embedded setup `make demo` uses: SQLite, a local event-store folder and a
Celery broker that needs no server (kombu's filesystem transport). Production sets
DATABASE_URL (PostgreSQL), CELERY_BROKER_URL (Redis), SECRET_KEY, ALLOWED_HOSTS, DEBUG=0.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
_INSECURE_KEY = "dev-only-insecure-key-set-SECRET_KEY-in-production-0123456789abcdef"
SECRET_KEY = os.environ.get("SECRET_KEY", _INSECURE_KEY)
if not DEBUG and SECRET_KEY == _INSECURE_KEY and not env_bool("ALLOW_INSECURE_KEY", False):
    raise RuntimeError("SECRET_KEY must be set when DEBUG is off (or ALLOW_INSECURE_KEY=1 for local use)")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # runserver leaves /static/ to WhiteNoise too (compressed and hashed as in production).
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "jobs",
    "events",
    "segments",
    "behaviour",
    "experiments",
    "planner",
    "integrations",
    "audit",
    "security",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # API bodies over the size or nesting limit: a JSON 413 / 400 before anything else runs.
    "security.middleware.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "jobs.middleware.BrokerUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "accounts.context_processors.workspaces",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("CONN_MAX_AGE", 0),
        # A kept connection is checked (one round trip) before its first use in a request,
        # so a database restart costs no failed request; only with CONN_MAX_AGE > 0.
        conn_health_checks=env_bool("CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (web, worker) share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Hashed static files: `collectstatic` writes each file under a name with a hash of its
# content plus .gz (and .br with the Brotli package) twins, and WhiteNoise serves those with
# a one-year immutable Cache-Control and the encoding the browser accepts. On in production
# and in `make demo` (which runs collectstatic); off for development and tests, which serve
# the files straight from the app folders (no collectstatic needed).
STATIC_HASHED = env_bool("STATIC_HASHED", not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "config.static_storage.HashedCompressedStaticFiles"
                    if STATIC_HASHED else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG and not STATIC_HASHED
WHITENOISE_AUTOREFRESH = DEBUG and not STATIC_HASHED
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Event store: a local folder by default, or an fsspec URL (memory://, s3:// with s3fs, file://).
EVENT_STORE = os.environ.get("EVENT_STORE", str(VAR_DIR / "event-store"))
EVENT_STORE_PARTITIONS = env_int("EVENT_STORE_PARTITIONS", 8)
# Options of a URL store's fsspec filesystem, as a JSON object, e.g. for an S3-compatible
# server: {"endpoint_url": "https://s3.example.com", "key": "...", "secret": "..."} (s3fs's
# arguments; without them s3fs reads the usual AWS_* variables and ~/.aws).
EVENT_STORE_OPTIONS = json.loads(os.environ.get("EVENT_STORE_OPTIONS") or "{}")
if not isinstance(EVENT_STORE_OPTIONS, dict):
    raise ImproperlyConfigured("EVENT_STORE_OPTIONS must be a JSON object")
# Distinct event names a dataset may hold: an import that would go over is rejected
# (too_many_event_names). The catalog of every name is stored with the dataset.
MAX_EVENT_NAMES = env_int("MAX_EVENT_NAMES", 10_000)
# Largest upload accepted through the UI and API (bytes).
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 1024 * 1024 * 1024)
# Experiment assignment / per-arm summary CSVs (read into memory): a smaller limit.
EXPERIMENT_UPLOAD_MAX_BYTES = env_int("EXPERIMENT_UPLOAD_MAX_BYTES", 200 * 1024 * 1024)
# Largest request body read into memory (form fields, JSON): over it the API answers a JSON 413
# (files are streamed to disk and have MAX_UPLOAD_BYTES).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BODY_BYTES", 10 * 1024 * 1024)
# JSON (API bodies, JSON form fields) nested deeper than this is a 400 before it is parsed.
JSON_MAX_DEPTH = env_int("JSON_MAX_DEPTH", 64)
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Cache: throttle and login-failure counts live here, so production shares them through Redis.
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": CACHE_URL, "KEY_PREFIX": "sp"}}
else:  # one process's memory: enough for tests and `make demo`
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                          "LOCATION": "segment-planner"}}
# Failed sign-ins allowed per username + address within the window (seconds).
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW", 15 * 60)

# Celery: Redis in production; without CELERY_BROKER_URL a filesystem broker needs no server.
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "store_processed": False,
        # Broadcast (pidbox) files: under var/, not a `control/` folder in the working directory.
        "control_folder": str(_BROKER_DIR / "control"),
    }
else:
    # A message unacknowledged this long (worker killed) is delivered again.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
        "unacked_restore_interval": env_int("CELERY_RESTORE_INTERVAL", 10),
        "unacked_restore_throttle": env_int("CELERY_RESTORE_THROTTLE", 10),
    }
# Fan-out of refreshes and behaviour analyses, one task per event-store partition (a chord):
# off (one process), on, or auto (on with a Redis broker). A chord needs a result backend:
# with a Redis broker, the same Redis unless CELERY_RESULT_BACKEND names another.
FANOUT = os.environ.get("FANOUT", "off")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else None)
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "refresh-due-segments": {"task": "segments.tasks.refresh_due_segments", "schedule": 3600.0},
    "retry-due-webhooks": {"task": "integrations.tasks.retry_due_webhooks", "schedule": 60.0},
}
# A job whose worker has not reported for this long may be claimed again.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 120)
# Work whose size is known in advance (an optimizer run's robust draws x items, its model and
# frontier) is refused at save and at start when its estimate exceeds this many MiB.
JOB_MEMORY_BUDGET_MB = env_int("JOB_MEMORY_BUDGET_MB", 2048)
# Webhooks go to public addresses only; 1 allows loopback, private and link-local receivers
# (a self-hosted install on its own network, the demo). `check --deploy` warns when on.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
# Where the app is reached: absolute links in webhook payloads sent outside a request (a page
# or API request uses its own scheme and host).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's parsers with the JSON nesting limit (security.bodies).
    "DEFAULT_PARSER_CLASSES": ["security.parsers.JSONParser", "security.parsers.FormParser",
                               "security.parsers.MultiPartParser"],
    "DEFAULT_PAGINATION_CLASS": "accounts.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": ["security.throttling.AnonThrottle",
                                 "security.throttling.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": os.environ.get("API_THROTTLE_ANON", "60/min"),
                               "user": os.environ.get("API_THROTTLE_USER", "1200/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Segment Planner API",
    "DESCRIPTION": "Datasets, event imports, quality reports and jobs. Version 1.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from this app, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ImportStatusEnum": "events.models.ImportStatus",
        "JobStateEnum": "jobs.models.JobState",
        "HypothesisStatusEnum": "experiments.models.HypothesisStatus",
        "InvestmentStatusEnum": "planner.models.InvestmentStatus",
        "RoadmapEnum": "planner.models.Roadmap",
        "VerdictEnum": "planner.models.Verdict",
        "EvidenceEnum": "experiments.models.Evidence",
        "SegmentKindEnum": "segments.models.SegmentKind",
        "AnalysisKindEnum": "behaviour.models.AnalysisKind",
        "ExperimentKindEnum": "experiments.models.ExperimentKind",
        "ExperimentStatusEnum": "experiments.models.ExperimentStatus",
        "DataSourceEnum": "experiments.models.DataSource",
        "CorrectionEnum": "experiments.models.Correction",
        "OutcomeEnum": "experiments.models.Outcome",
        "WebhookEventEnum": "integrations.models.WebhookEvent",
        "DeliveryStateEnum": "integrations.models.DeliveryState",
        "MetricValueEnum": "experiments.models.MetricValue",
    },
}

# Production hardening; `manage.py check --deploy` is clean when DEBUG is off.
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # plain-HTTP checks from the load balancer
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
