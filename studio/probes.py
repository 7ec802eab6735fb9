"""`/healthz`, `/readyz` and `/metrics`: answered before any other middleware runs.

Load balancers and orchestrators call the probes by IP or by an internal name, so they are exempt
from the ALLOWED_HOSTS check (nothing here calls `request.get_host()`), need no login, and reveal
nothing but ok / not ok per check. `/metrics` is exempt from the host check for the same reason
(Prometheus scrapes targets by address) but needs `STUDIO_METRICS_TOKEN` or an allowed address.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse

log = logging.getLogger("runs.probes")

RETRY_AFTER_SECONDS = 5
_MIGRATIONS_OK_FOR = 60.0  # once all applied, re-checked at most this often (it reads files)
_migrations_ok_until = [0.0]


def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and serving requests. No database call, on purpose."""
    return _json(200, {"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    """Ready for traffic: the database answers with every migration applied; the queue answers."""
    checks = {"database": _check(_database), "migrations": "not ok", "queue": _check(_queue)}
    if checks["database"] == "ok":
        checks["migrations"] = _check(_migrations)
    if all(value == "ok" for value in checks.values()):
        return _json(200, {"status": "ok", "checks": checks})
    response = _json(
        503,
        {
            "error": {
                "message": "Studio is not ready: "
                + ", ".join(name for name, value in checks.items() if value != "ok"),
                "code": "service_unavailable",
                "detail": {"checks": checks},
            }
        },
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _check(fn: Callable[[], None]) -> str:
    try:
        fn()
    except Exception:  # what failed goes to the log, never into the answer
        log.warning("readiness check %s failed", fn.__name__.strip("_"), exc_info=True)
        return "not ok"
    return "ok"


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        connection.close()  # a broken connection must not be reused by the next probe
        raise


def _migrations() -> None:
    if time.monotonic() < _migrations_ok_until[0]:
        return
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise RuntimeError("unapplied migrations")
    _migrations_ok_until[0] = time.monotonic() + _MIGRATIONS_OK_FOR


_redis: list = []


def _queue() -> None:
    if settings.REDIS_URL:
        # A client of its own with short timeouts: a hung Redis must not hang the probe.
        if not _redis:
            import redis

            _redis.append(
                redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
            )
        _redis[0].ping()
    else:
        from huey.contrib.djhuey import HUEY

        HUEY.pending_count()  # SQLite: one read of the queue table


# --- /metrics ----------------------------------------------------------------------------------


def metrics(request: HttpRequest) -> HttpResponse:
    if not _metrics_allowed(request):
        response = _json(
            401,
            {
                "error": {
                    "message": "metrics need Authorization: Bearer <STUDIO_METRICS_TOKEN> "
                    "or an address in STUDIO_METRICS_ALLOW",
                    "code": "unauthorized",
                    "detail": None,
                }
            },
        )
        response["WWW-Authenticate"] = 'Bearer realm="studio-metrics"'
        return response
    from runs.metrics import exposition

    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)


def _metrics_allowed(request: HttpRequest) -> bool:
    token = settings.STUDIO_METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())
    if settings.STUDIO_METRICS_ALLOW:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        return any(address in network for network in settings.STUDIO_METRICS_ALLOW)
    return False


# --- the middleware ----------------------------------------------------------------------------

ROUTES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": metrics,
}


class ProbeMiddleware:
    """First in MIDDLEWARE: answers the probes before anything asks for the host."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = ROUTES.get(request.path_info.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = _json(
                405,
                {
                    "error": {
                        "message": f"method {request.method} not allowed here",
                        "code": "method_not_allowed",
                        "detail": None,
                    }
                },
            )
            response["Allow"] = "GET, HEAD"
            return response
        response = view(request)
        response["Cache-Control"] = "no-store"
        return response


def _json(status: int, body: dict) -> HttpResponse:
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")


class RequestMetricsMiddleware:
    """Counts answers by route pattern (not by path: run ids would make a series each)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        from runs import metrics as studio_metrics

        match = getattr(request, "resolver_match", None)
        probe = request.path_info.rstrip("/")
        if probe in ROUTES:
            route = probe
        elif match is not None and match.route:
            route = "/" + match.route.lstrip("^").rstrip("$")
        elif request.path_info.startswith("/" + settings.STATIC_URL.lstrip("/")):
            route = "static"
        else:
            route = "unmatched"
        studio_metrics.http_request(route, response.status_code)
        return response
