"""Studio settings: one module, driven by environment variables.

Every variable is read through a strict helper, so a bad value stops start-up with a message
that names the variable instead of surfacing later as a confusing error.
"""

from __future__ import annotations

import math
import os
import secrets
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("STUDIO_VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "on"):
        return True
    if raw.lower() in ("0", "false", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use true/false, on/off or 1/0")


def env_number(name: str, default: float, *, minimum: float = 0, integer: bool = False):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ImproperlyConfigured(f"{name}={raw!r} is not {kind}") from None
    if not math.isfinite(value):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a finite number")
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}")
    return value


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    return env_number(name, default, minimum=minimum, integer=True)


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name) or default
    if raw.upper() not in choices:
        raise ImproperlyConfigured(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return raw.upper()


def database_from_url(url: str) -> dict:
    """Turn DATABASE_URL (sqlite:///path or postgres://user:pass@host:port/name) into a dict."""
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        # sqlite:///relative/path and sqlite:////absolute/path, as dj-database-url reads them.
        name = path[1:] if path.startswith("/") else path
        if not name:
            raise ImproperlyConfigured(f"DATABASE_URL={url!r} names no SQLite file")
        return sqlite_database(Path(name) if Path(name).is_absolute() else BASE_DIR / name)
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured(f"DATABASE_URL={url!r} names no database")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL={url!r} has an unsupported scheme {parts.scheme!r}: use sqlite:// or postgres://"
    )


def sqlite_database(path: Path) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        # WAL lets the web server read while the worker writes; IMMEDIATE takes the write lock
        # at BEGIN so two writers queue on busy_timeout instead of failing with "locked".
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
        # The worker is another process, so tests need a file database it can open too.
        "TEST": {"NAME": str(path.with_name(path.stem + "-test.sqlite3"))},
    }


def load_secret_key() -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = load_secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = [
    h.strip() for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in env_str("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    # runs first so its run_huey (graceful shutdown, sweeper) wins over djhuey's.
    "runs",
    "studio",
    "studio.dashboard",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",
    "huey.contrib.djhuey",
]

MIDDLEWARE = [
    # First: /healthz, /readyz and /metrics are answered before anything checks the host
    # (and counted, like every answer, by route).
    "studio.probes.RequestMetricsMiddleware",
    "studio.probes.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "studio.urls"
WSGI_APPLICATION = "studio.wsgi.application"

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
    }
]

DATABASE_URL = env_str("DATABASE_URL")
DATABASES = {
    "default": database_from_url(DATABASE_URL)
    if DATABASE_URL
    else sqlite_database(VAR_DIR / "studio.sqlite3")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(
    exist_ok=True
)  # whitenoise warns on a missing root even when serving from finders
# Serve straight from the finders in every mode, so `make run` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Body size limit (bytes) for requests: the API answers 413 above it.
STUDIO_MAX_BODY_BYTES = env_int("STUDIO_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = STUDIO_MAX_BODY_BYTES

# --- Task definitions -------------------------------------------------------------------------
STUDIO_TASKS_DIR = Path(env_str("STUDIO_TASKS_DIR", str(BASE_DIR / "tasks"))).resolve()
STUDIO_WORKFLOWS_DIR = Path(env_str("STUDIO_WORKFLOWS_DIR", str(BASE_DIR / "workflows"))).resolve()

# --- Run engine -------------------------------------------------------------------------------
STUDIO_DEFAULT_TIMEOUT_SECONDS = env_int("STUDIO_DEFAULT_TIMEOUT_SECONDS", 3600, minimum=1)
STUDIO_DEFAULT_BACKOFF_LIMIT = env_int("STUDIO_DEFAULT_BACKOFF_LIMIT", 0)
STUDIO_RETRY_BASE_SECONDS = env_number("STUDIO_RETRY_BASE_SECONDS", 2.0)
STUDIO_RETRY_MAX_SECONDS = env_number("STUDIO_RETRY_MAX_SECONDS", 300.0)
STUDIO_CANCEL_GRACE_SECONDS = env_number("STUDIO_CANCEL_GRACE_SECONDS", 5.0)
STUDIO_SHUTDOWN_GRACE_SECONDS = env_number("STUDIO_SHUTDOWN_GRACE_SECONDS", 30.0)
STUDIO_HEARTBEAT_SECONDS = env_number("STUDIO_HEARTBEAT_SECONDS", 5.0, minimum=0.1)
STUDIO_WORKER_LOST_SECONDS = env_number("STUDIO_WORKER_LOST_SECONDS", 30.0, minimum=0.5)
STUDIO_SWEEP_SECONDS = env_number("STUDIO_SWEEP_SECONDS", 10.0, minimum=0.1)
STUDIO_REQUEUE_AFTER_SECONDS = env_number("STUDIO_REQUEUE_AFTER_SECONDS", 60.0, minimum=0.1)
STUDIO_EVENT_FLUSH_SECONDS = env_number("STUDIO_EVENT_FLUSH_SECONDS", 0.25, minimum=0.01)
STUDIO_EVENT_BATCH_SIZE = env_int("STUDIO_EVENT_BATCH_SIZE", 2000, minimum=1)
STUDIO_MAX_EVENTS_PER_RUN = env_int("STUDIO_MAX_EVENTS_PER_RUN", 250_000, minimum=10)
STUDIO_MAX_EVENT_BYTES = env_int("STUDIO_MAX_EVENT_BYTES", 64 * 1024, minimum=256)
STUDIO_MAX_LOG_BYTES = env_int("STUDIO_MAX_LOG_BYTES", 1024 * 1024, minimum=1024)
STUDIO_WORKERS = env_int("STUDIO_WORKERS", max(4, 2 * (os.cpu_count() or 1)), minimum=1)

# --- Queue ------------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
STUDIO_QUEUE_NAME = env_str("STUDIO_QUEUE_NAME", "studio")
_consumer = {
    "workers": STUDIO_WORKERS,
    "worker_type": "thread",
    "periodic": False,
    # SIGTERM drains: no new runs, running ones get STUDIO_SHUTDOWN_GRACE_SECONDS.
    "graceful_signal": "TERM",
    "shutdown_timeout": STUDIO_SHUTDOWN_GRACE_SECONDS + 10,
    "check_worker_health": True,
}
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(
            f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://"
        )
    HUEY = {
        "huey_class": "huey.RedisHuey",
        "name": STUDIO_QUEUE_NAME,
        "url": REDIS_URL,
        "immediate": False,
        "results": False,
        "blocking": True,  # BRPOP: an idle worker wakes the moment a run is enqueued.
        "consumer": {**_consumer, "initial_delay": 0.1, "max_delay": 1.0},
    }
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": STUDIO_QUEUE_NAME,
        "filename": str(Path(env_str("STUDIO_HUEY_FILE", str(VAR_DIR / "huey.sqlite3"))).resolve()),
        "immediate": False,
        "results": False,
        # SqliteHuey polls; these keep an idle worker's pick-up latency around 50 ms.
        "consumer": {**_consumer, "initial_delay": 0.01, "backoff": 1.5, "max_delay": 0.05},
    }

# --- Operations -------------------------------------------------------------------------------
# /metrics answers a bearer token, or the addresses (IPs or CIDR networks) in the allow-list.
STUDIO_METRICS_TOKEN = env_str("STUDIO_METRICS_TOKEN")


def _networks(name: str) -> list:
    import ipaddress

    networks = []
    for item in env_str(name).split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ImproperlyConfigured(
                    f"{name}: {item.strip()!r} is not an IP address or network"
                ) from None
    return networks


STUDIO_METRICS_ALLOW = _networks("STUDIO_METRICS_ALLOW")
# `json`: one JSON object per line (with run_id, project and worker where they apply).
STUDIO_LOG_FORMAT = env_choice("STUDIO_LOG_FORMAT", "PLAIN", ("PLAIN", "JSON")).lower()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "runs.logs.JSONFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": STUDIO_LOG_FORMAT}},
    "loggers": {
        "runs": {
            "handlers": ["console"],
            "level": env_choice(
                "STUDIO_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
            ),
        },
        "huey": {"handlers": ["console"], "level": "WARNING"},
    },
}
