"""Eventfeed's one settings file.

Everything that differs between a laptop and production comes from the environment, read through
the small typed helpers below. With DEBUG off (production), the values that must not have a
development default are required, and a missing one stops the process at start-up.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ImproperlyConfigured(f"Set the environment variable {name} (required when DEBUG is off).")
    return default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use true or false.")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_day_overrides(name: str) -> dict[str, int]:
    """`pattern=days,pattern=days` (`prefect.flow-run.heartbeat=1,acme.audit.*=365`) as a dict."""
    value = os.environ.get(name, "").strip()
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        pattern, sep, days = item.rpartition("=")
        pattern = pattern.strip()
        if not sep or not pattern or " " in pattern or "*" in pattern[:-1] or not days.strip().isdigit() or int(days) < 1:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not NAME=DAYS or PREFIX*=DAYS (e.g. prefect.flow-run.heartbeat=1,acme.audit.*=365)."
            )
        out[pattern] = int(days)
    return out


DEBUG = env_bool("DEBUG", True)
# In production these three have no default: a forgotten one fails at start-up, not at the
# first request.
SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-change-me" if DEBUG else None)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Set ALLOWED_HOSTS (comma-separated) when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_filters",
    "axes",
    "channels",
    "eventfeed.events",
    "eventfeed.automations",
    "eventfeed.webhooks",
    "eventfeed.follow",
    "eventfeed.blocks",
    "eventfeed.savedviews",
    "eventfeed.benchmarks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Compresses HTML and JSON (a feed page's rows are ~10x smaller gzipped). Django's version
    # pads each response with random bytes against BREACH; CSRF tokens are masked per response.
    "django.middleware.gzip.GZipMiddleware",
    "eventfeed.csp.ContentSecurityPolicyMiddleware",
    # First, so that every error under /api/ (a 404, a CSRF 403, a 500) leaves as JSON.
    "eventfeed.events.middleware.ApiErrorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Who acts, for the audit events the code under it records (eventfeed/audit.py).
    "eventfeed.audit.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "eventfeed.dbrouter.PrimaryAfterWriteMiddleware",
    # Last: turns a sign-in refused for too many failures into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "eventfeed.urls"
ASGI_APPLICATION = "eventfeed.asgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'eventfeed.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_POOL", True):
    # Under ASGI every database_sync_to_async call ends by closing the connection; a pool
    # makes that a return to the pool instead of a new PostgreSQL session per batch.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("DATABASE_POOL_MAX", 10),
        # How long a request waits for a connection: while the database is away, a request
        # is answered 503 + Retry-After after this long rather than holding its client.
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 10),
    }
# A PostgreSQL streaming replica for the feed, the event page and the read APIs
# (eventfeed/dbrouter.py); writes, ingest, automations and read-your-writes use "default".
DATABASE_READ_URL = os.environ.get("DATABASE_READ_URL", "").strip()
if DATABASE_READ_URL:
    DATABASES["replica"] = dj_database_url.parse(DATABASE_READ_URL, conn_max_age=DATABASES["default"]["CONN_MAX_AGE"])
    if DATABASES["replica"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_READ_URL must be a postgres:// URL (a streaming replica of DATABASE_URL).")
    if "pool" in DATABASES["default"].get("OPTIONS", {}):
        DATABASES["replica"].setdefault("OPTIONS", {})["pool"] = dict(DATABASES["default"]["OPTIONS"]["pool"])
    # Tests that do not start a replica of their own read the test database through this alias.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["eventfeed.dbrouter.ReplicaRouter"]
# After a browser's own write (a POST that is not a read API), its reads stay on the primary this
# many seconds, so that it sees what it just did although the replica lags.
EVENTFEED_READ_YOUR_WRITES_SECONDS = env_int("EVENTFEED_READ_YOUR_WRITES_SECONDS", 10)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, for the test database: browser tests serve it from a second process.
    DATABASES["default"]["TEST"] = {"NAME": env_str("EVENTFEED_TEST_SQLITE", str(BASE_DIR / ".test-eventfeed.sqlite3"))}
    # WAL lets the feed read while the demo stream writes; IMMEDIATE takes the write lock at
    # BEGIN, so the duplicate check and the insert of one ingest batch cannot interleave.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "").strip()
# The cache holds the wrong-API-key counts (eventfeed/throttle.py): in Redis, all processes share them.
if REDIS_URL:
    # Short timeouts: a Redis that does not answer skips the count (throttle.py) within a second
    # instead of holding the request.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "eventfeed",
                          "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "eventfeed.layers.ExactRedisChannelLayer",
            # channels-redis blocks 5 s in BZPOPMIN; redis-py 8's default 5-s socket timeout races
            # it and fails idle receives with TimeoutError (a message popped at that moment is lost).
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}], "capacity": 10_000, "expiry": 60},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "eventfeed.layers.InProcessChannelLayer", "CONFIG": {"capacity": 10_000}}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# Sign-in throttling (django-axes): after this many failures for one username, or from one
# address, further sign-ins are refused for the cool-off time; each refused attempt restarts it.
AUTHENTICATION_BACKENDS = ["eventfeed.throttle.SignInThrottle", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("EVENTFEED_SIGNIN_FAILURES", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("EVENTFEED_SIGNIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "eventfeed.throttle.signin_locked_out"
# Successful sign-ins are audit events already (eventfeed.audit.sign-in).
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
# Wrong API keys from one address (eventfeed/throttle.py): this many within this many seconds,
# then 429 until the window ends.
EVENTFEED_API_KEY_FAILURES = env_int("EVENTFEED_API_KEY_FAILURES", 10)
EVENTFEED_API_KEY_WINDOW = env_int("EVENTFEED_API_KEY_WINDOW", 600)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# With DEBUG off, static files are served from collectstatic's output: hashed names that
# browsers may keep for a year, and compressed copies. With DEBUG on (a laptop, the tests), from
# the source folders as they are.
if not DEBUG:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "eventfeed.staticstorage.StaticStorage"},
    }

# The Content-Security-Policy header (eventfeed/csp.py); empty: the built-in policy.
EVENTFEED_CSP = env_str("EVENTFEED_CSP", "")
# Django's own security headers keep their defaults: X-Content-Type-Options nosniff,
# Referrer-Policy same-origin, Cross-Origin-Opener-Policy same-origin, X-Frame-Options DENY.
if not DEBUG:
    # What `manage.py check --deploy` asks for, on by default; each can be turned off for a
    # deployment without TLS (README, Security).
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # A load balancer's health probe speaks plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^api/health$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    # Preloading is for the owner of the apex domain to decide (it cannot be undone quickly);
    # without it, check --deploy's only remark would be W021.
    SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "eventfeed@localhost")

# Ingest limits (documented in the README). Prefect's own: 1.5 MB, 500 labels, 100 related.
EVENTFEED_MAX_EVENT_BYTES = env_int("EVENTFEED_MAX_EVENT_BYTES", 1_500_000)
EVENTFEED_MAX_LABELS = env_int("EVENTFEED_MAX_LABELS", 500)
EVENTFEED_MAX_RELATED = env_int("EVENTFEED_MAX_RELATED", 100)
# One HTTP request may carry up to this many bytes and events.
# 5 MiB, Prefect Cloud's own cap: a request costs the server several times its size while it is
# parsed, validated, written and published (measured by bench_faults: 50 MB requests of big
# events peaked at +700 MB and left +340 MB behind; 5 MiB ones at +35 MB and +18 MB). A batch of
# 5,000 ordinary events is about 5 MB; one event may be 1.5 MB.
EVENTFEED_MAX_REQUEST_BYTES = env_int("EVENTFEED_MAX_REQUEST_BYTES", 5 * 1024 * 1024)
EVENTFEED_MAX_BATCH = env_int("EVENTFEED_MAX_BATCH", 5_000)
# How far ahead of the server's clock an event's `occurred` may be (0: no limit). A day covers
# any clock skew and time-zone slip; beyond it the producer's clock is wrong. Times in the past
# are not limited: history is imported with its own times. (Prefect accepts any time.)
EVENTFEED_MAX_FUTURE_SECONDS = env_int("EVENTFEED_MAX_FUTURE_SECONDS", 86_400)
DATA_UPLOAD_MAX_MEMORY_SIZE = EVENTFEED_MAX_REQUEST_BYTES
# The live push coalesces the events of this many milliseconds into one frame per socket.
EVENTFEED_LIVE_FLUSH_MS = env_int("EVENTFEED_LIVE_FLUSH_MS", 50)
# Every this many seconds each process checks and renews its membership of the live stream's
# group: the most live delivery can stay lost after Redis forgets it.
EVENTFEED_LIVE_CHECK_SECONDS = env_int("EVENTFEED_LIVE_CHECK_SECONDS", 3)
# How far back a live subscriber (/api/events/out) may ask for a backfill. Prefect: 15 minutes.
EVENTFEED_MAX_BACKFILL_MINUTES = env_int("EVENTFEED_MAX_BACKFILL_MINUTES", 60)

# Retention (README "Retention and storage"): days an event is kept, per-name overrides, how often
# the automation worker prunes, and how many days of partitions exist ahead of today (PostgreSQL).
EVENTFEED_RETENTION_DAYS = env_int("EVENTFEED_RETENTION_DAYS", 7)
if EVENTFEED_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("EVENTFEED_RETENTION_DAYS must be at least 1.")
EVENTFEED_RETENTION_OVERRIDES = env_day_overrides("EVENTFEED_RETENTION_OVERRIDES")
EVENTFEED_PRUNE_EVERY_MINUTES = env_int("EVENTFEED_PRUNE_EVERY_MINUTES", 60)
EVENTFEED_PARTITIONS_AHEAD_DAYS = env_int("EVENTFEED_PARTITIONS_AHEAD_DAYS", 3)

# Automations: evaluate inside every Daphne process (false when only `manage.py run_automations`
# workers should evaluate).
EVENTFEED_AUTOMATIONS_IN_PROCESS = env_bool("EVENTFEED_AUTOMATIONS_IN_PROCESS", True)
# Evaluation records ("why it fired, why it didn't"): one row per automation and event that
# reached it, kept this many hours.
EVENTFEED_EVALUATION_RECORDS = env_bool("EVENTFEED_EVALUATION_RECORDS", True)
EVENTFEED_EVALUATIONS_KEPT_HOURS = env_int("EVENTFEED_EVALUATIONS_KEPT_HOURS", 24)

# User templates (automation actions, webhook templates) render in eventfeed/sandbox.py within
# this much CPU time and output (characters).
EVENTFEED_TEMPLATE_CPU_SECONDS = env_float("EVENTFEED_TEMPLATE_CPU_SECONDS", 1.0)
EVENTFEED_TEMPLATE_MAX_OUTPUT = env_int("EVENTFEED_TEMPLATE_MAX_OUTPUT", 65_536)

# Webhook actions (and any other outbound call, eventfeed/outbound.py) refuse loopback, private,
# link-local, unique-local, multicast and unspecified addresses except these CIDRs and host names.
EVENTFEED_OUTBOUND_ALLOW = env_list("EVENTFEED_OUTBOUND_ALLOW", [])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}

# follow_prefect (and run_automations, when set): Prefect servers to mirror, comma-separated API
# URLs (http://host:4200/api, or a Cloud workspace's), and the credential they take: a Cloud
# API key (sent as Bearer) or a self-hosted server's auth string (sent as Basic).
EVENTFEED_FOLLOW_PREFECT_URLS = env_list("EVENTFEED_FOLLOW_PREFECT_URLS", [])
EVENTFEED_FOLLOW_PREFECT_KEY = env_str("EVENTFEED_FOLLOW_PREFECT_KEY", "")
EVENTFEED_FOLLOW_PREFECT_AUTH_STRING = env_str("EVENTFEED_FOLLOW_PREFECT_AUTH_STRING", "")
