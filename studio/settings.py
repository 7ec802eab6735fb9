"""Studio settings: one module, driven by environment variables.

Every variable is read through a strict helper, so a bad value stops start-up with a message
that names the variable instead of surfacing later as a confusing error.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import secrets
import stat
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from studio.queue_signing import QueueSerializer

BASE_DIR = Path(__file__).resolve().parent.parent


# var/ holds the secret key, the SQLite database and the queue: readable by Studio's user only.
def private_dir(path: Path) -> Path:
    """`path`, created if missing, narrowed to 0700 if it is Studio's own. A sticky directory
    (such as /tmp) is shared by design and left alone."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_mode & 0o077 and info.st_uid == os.getuid() and not info.st_mode & stat.S_ISVTX:
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """`path`, created empty with mode 0600 if missing (an empty file is an empty SQLite
    database), else narrowed to 0600 if it is Studio's own, with SQLite's companion files.
    SQLite creates the -wal and -shm files with the database file's mode, so they follow."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for each in [path] + [path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal")]:
        try:
            info = each.stat()
        except FileNotFoundError:
            continue
        if info.st_mode & 0o077 and info.st_uid == os.getuid():
            each.chmod(0o600)
    return path


VAR_DIR = private_dir(Path(os.environ.get("STUDIO_VAR_DIR", BASE_DIR / "var")).resolve())


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
            "OPTIONS": {**_prepared_statements(), **options},
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL={url!r} has an unsupported scheme {parts.scheme!r}: use sqlite:// or postgres://"
    )


def _prepared_statements() -> dict:
    """PostgreSQL options for prepared statements, on unless STUDIO_DB_PREPARED_STATEMENTS=false.

    Django sends each query with its values written in (client-side binding), so PostgreSQL
    parses and plans every statement again: for the few statements every run makes (create,
    claim, complete, its events), that was most of what the database spent on a run. With
    server-side binding psycopg prepares a statement once it has been executed 5 times on a
    connection, and then sends only its values. Turn it off behind a pooler in transaction mode
    that does not support prepared statements (PgBouncer before 1.21)."""
    if not env_bool("STUDIO_DB_PREPARED_STATEMENTS", True):
        return {}
    return {"server_side_binding": True, "prepare_threshold": 5}


def sqlite_database(path: Path) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    private_file(path)
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
        # Written whole under a temporary name at 0600, then linked into place: no moment when
        # another user could read it, and a process starting beside this one (web and worker)
        # either finds no key yet or the finished one, never a half-written file.
        draft = VAR_DIR / f".secret_key.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, key_file)
        except FileExistsError:
            pass  # another process was first: use its key
        finally:
            draft.unlink()
    private_file(key_file)
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
    "axes",
]

MIDDLEWARE = [
    # First: /healthz, /readyz and /metrics are answered before anything checks the host
    # (and counted, like every answer, by route).
    "studio.probes.RequestMetricsMiddleware",
    "studio.probes.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "studio.middleware.reject_nul",  # before anything looks a path up (files, routes, rows)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "studio.middleware.content_security_policy",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
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

# --- Email: only for password reset, which is off (404) until EMAIL_HOST is set ---------------
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "studio@localhost")

# --- HTTP security ------------------------------------------------------------------------------
# STUDIO_HTTPS=true: Studio is served over HTTPS, usually by a TLS-terminating proxy that sets
# X-Forwarded-Proto (and must overwrite a client's own). Cookies then travel over HTTPS only,
# and browsers are told to use nothing else (HSTS).
STUDIO_HTTPS = env_bool("STUDIO_HTTPS", False)
if STUDIO_HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("STUDIO_HSTS_SECONDS", 365 * 24 * 3600)
SESSION_COOKIE_AGE = int(env_number("STUDIO_SESSION_HOURS", 12.0, minimum=0.1) * 3600)
CSRF_COOKIE_HTTPONLY = True  # pages send the token from the template (hx-headers), not JS
# Every page's scripts and styles come from Studio's own static files: no inline script or
# style is allowed, so injected markup cannot run. STUDIO_CSP replaces the whole policy;
# set it empty to send none.
STUDIO_CSP = env_str(
    "STUDIO_CSP",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
)

# --- Sign-in throttling (django-axes): the dashboard and the admin share one login backend ----
# After STUDIO_LOGIN_FAILURE_LIMIT wrong passwords for one username from one address, that pair
# is locked out for STUDIO_LOGIN_COOLOFF_MINUTES (each further try restarts the wait), the
# right password included. Locking the pair rather than the username alone keeps an attacker
# from locking a real user out from everywhere; behind a proxy every client shares the
# proxy's address, so it becomes the username alone. Admins see and lift lockouts in the
# admin under "Axes" (delete the access attempt) or with `manage.py axes_reset_username`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
STUDIO_LOGIN_FAILURE_LIMIT = env_int("STUDIO_LOGIN_FAILURE_LIMIT", 5, minimum=1)
STUDIO_LOGIN_COOLOFF_MINUTES = env_number("STUDIO_LOGIN_COOLOFF_MINUTES", 15.0, minimum=0.1)
AXES_FAILURE_LIMIT = STUDIO_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = dt.timedelta(minutes=STUDIO_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "studio.dashboard.views.signin.locked_out"
AXES_USERNAME_CALLABLE = "studio.dashboard.views.signin.throttled_username"
# Failed attempts are what lockouts need; a row per successful sign-in would grow forever.
AXES_DISABLE_ACCESS_LOG = True

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

# `manage.py bench --only api` switches on GET /api/_bench/bare, a fixed answer with no auth that
# the request rates are measured beside. Nothing else sets it; off, the route does not exist.
STUDIO_BENCH_ENDPOINT = env_bool("STUDIO_BENCH_ENDPOINT", False)

# An API token that checked out is remembered this long in each web process (runs/api/tokens.py):
# a token revoked elsewhere stops working within this many seconds (at once in the process that
# revoked it). 0: read it from the database on every request.
STUDIO_TOKEN_CACHE_SECONDS = env_number("STUDIO_TOKEN_CACHE_SECONDS", 2.0)

# --- Task definitions -------------------------------------------------------------------------
STUDIO_TASKS_DIR = Path(env_str("STUDIO_TASKS_DIR", str(BASE_DIR / "tasks"))).resolve()
STUDIO_WORKFLOWS_DIR = Path(env_str("STUDIO_WORKFLOWS_DIR", str(BASE_DIR / "workflows"))).resolve()
STUDIO_WEBHOOKS_DIR = Path(env_str("STUDIO_WEBHOOKS_DIR", str(BASE_DIR / "webhooks"))).resolve()

# Links that leave Studio (notifications, the curl a webhook page gives) start with this.
STUDIO_BASE_URL = env_str("STUDIO_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Webhooks and notifications ---------------------------------------------------------------
# A verified delivery's body is kept up to this many bytes (for the dashboard and re-delivery).
STUDIO_WEBHOOK_BODY_CAP = env_int("STUDIO_WEBHOOK_BODY_CAP", 64 * 1024, minimum=0)
# Deliveries that fail verification are recorded (without body) at most this often per webhook,
# so a public URL cannot fill the database; the rest are only counted.
STUDIO_WEBHOOK_FAILED_RECORDS_PER_MINUTE = env_int(
    "STUDIO_WEBHOOK_FAILED_RECORDS_PER_MINUTE", 10, minimum=0
)
# Refuse notification URLs that resolve to loopback/private/link-local addresses unless true.
STUDIO_NOTIFY_ALLOW_PRIVATE_URLS = env_bool("STUDIO_NOTIFY_ALLOW_PRIVATE_URLS", False)
STUDIO_NOTIFY_POLL_SECONDS = env_number("STUDIO_NOTIFY_POLL_SECONDS", 2.0, minimum=0.05)
STUDIO_NOTIFY_TIMEOUT_SECONDS = env_number("STUDIO_NOTIFY_TIMEOUT_SECONDS", 10.0, minimum=0.1)
STUDIO_NOTIFY_GIVE_UP_HOURS = env_number("STUDIO_NOTIFY_GIVE_UP_HOURS", 24.0, minimum=0.01)
# Multiplies the retry delays (10 s, 30 s, 1 min, ... 1 h); tests shrink it.
STUDIO_NOTIFY_RETRY_SCALE = env_number("STUDIO_NOTIFY_RETRY_SCALE", 1.0, minimum=0.0001)

# --- Schedules --------------------------------------------------------------------------------
STUDIO_SCHEDULES_DIR = Path(env_str("STUDIO_SCHEDULES_DIR", str(BASE_DIR / "schedules"))).resolve()
# Every worker runs the scheduler loop; set false to keep a worker out of it.
STUDIO_SCHEDULER = env_bool("STUDIO_SCHEDULER", True)
# How many due schedules one worker claims per transaction. Bigger batches fire a burst faster
# (runs start executing only once a batch commits, so they do not slow the firing down), but
# on SQLite the batch holds the one write lock, so keep it short there.
STUDIO_SCHEDULER_BATCH = env_int(
    "STUDIO_SCHEDULER_BATCH",
    200 if DATABASES["default"]["ENGINE"].endswith("postgresql") else 25,
    minimum=1,
)
# The longest the loop sleeps before it looks again (a schedule may be added meanwhile).
STUDIO_SCHEDULER_MAX_SLEEP_SECONDS = env_number(
    "STUDIO_SCHEDULER_MAX_SLEEP_SECONDS", 1.0, minimum=0.05
)
# catch_up "all" fires at most this many missed slots after a downtime.
STUDIO_SCHEDULE_CATCH_UP_MAX = env_int("STUDIO_SCHEDULE_CATCH_UP_MAX", 100, minimum=1)
# catch_up "none": a slot this late is treated as missed, not as on time.
STUDIO_SCHEDULE_ON_TIME_SECONDS = env_number("STUDIO_SCHEDULE_ON_TIME_SECONDS", 60.0, minimum=1)

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

# --- Run sandbox (README: "What a run can reach") ----------------------------------------------
# auto: sandbox every run where the kernel allows, else warn loudly and use process groups only;
# required: refuse to start without it; off: process groups only.
STUDIO_SANDBOX = env_choice("STUDIO_SANDBOX", "auto", ("AUTO", "REQUIRED", "OFF")).lower()
# As root, run N gets uid/gid STUDIO_SANDBOX_UID_BASE + (its pid): no other process has them.
STUDIO_SANDBOX_UID_BASE = env_int("STUDIO_SANDBOX_UID_BASE", 1_000_000_000, minimum=65536)
# A cgroup per run (memory, processes) where the machine offers one; false: rlimits only.
STUDIO_SANDBOX_CGROUPS = env_bool("STUDIO_SANDBOX_CGROUPS", True)
# Default limits of every run; a task overrides them with @task(limits={...}).
STUDIO_RUN_MEMORY_MB = env_int("STUDIO_RUN_MEMORY_MB", 1024, minimum=16)
STUDIO_RUN_CPU_SECONDS = env_int("STUDIO_RUN_CPU_SECONDS", 3600, minimum=1)
STUDIO_RUN_MAX_PROCESSES = env_int("STUDIO_RUN_MAX_PROCESSES", 64, minimum=1)
STUDIO_RUN_MAX_FILE_MB = env_int("STUDIO_RUN_MAX_FILE_MB", 100, minimum=1)
STUDIO_RUN_DISK_MB = env_int("STUDIO_RUN_DISK_MB", 100, minimum=1)
# @task(reuse_process=True): a warm process serves this many runs before it is replaced, and is
# ended after this long without a run (README: "Reusing a process").
STUDIO_REUSE_PROCESS_MAX_RUNS = env_int("STUDIO_REUSE_PROCESS_MAX_RUNS", 1000, minimum=1)
STUDIO_REUSE_PROCESS_IDLE_SECONDS = env_number(
    "STUDIO_REUSE_PROCESS_IDLE_SECONDS", 300.0, minimum=0.1
)

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
# Every message is signed and checked before it is unpickled (studio/queue_signing.py).
_queue_serializer = QueueSerializer(SECRET_KEY)
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(
            f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://"
        )
    HUEY = {
        "huey_class": "studio.queue_signing.StudioRedisHuey",
        "name": STUDIO_QUEUE_NAME,
        "url": REDIS_URL,
        "immediate": False,
        "results": False,
        "blocking": True,  # BRPOP: an idle worker wakes the moment a run is enqueued.
        "serializer": _queue_serializer,
        "consumer": {**_consumer, "initial_delay": 0.1, "max_delay": 1.0},
    }
else:
    HUEY = {
        "huey_class": "studio.queue_signing.StudioSqliteHuey",
        "name": STUDIO_QUEUE_NAME,
        "filename": str(
            private_file(Path(env_str("STUDIO_HUEY_FILE", str(VAR_DIR / "huey.sqlite3"))).resolve())
        ),
        "immediate": False,
        "results": False,
        "serializer": _queue_serializer,
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
        # Django logs a view's unhandled exception here, but its default handler prints only
        # with DEBUG on: a production 500 would leave no trace. ERROR: 5xx, not every 404.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "axes": {"handlers": ["console"], "level": "WARNING"},  # lockouts
    },
}

# Workflows: default wall-clock limit of a workflow run (waiting included), the most items one
# map step may fan out to, and how deep sub-workflows may nest.
STUDIO_DEFAULT_WORKFLOW_TIMEOUT_SECONDS = env_int(
    "STUDIO_DEFAULT_WORKFLOW_TIMEOUT_SECONDS", 7 * 86400, minimum=1
)
STUDIO_WORKFLOW_MAX_ITEMS = env_int("STUDIO_WORKFLOW_MAX_ITEMS", 1000, minimum=1)
STUDIO_WORKFLOW_MAX_DEPTH = env_int("STUDIO_WORKFLOW_MAX_DEPTH", 5, minimum=1)
