"""Prometheus metrics, every series prefixed `studio_`.

Two kinds:
- counters and histograms counted where things happen (lifecycle hooks, the sweeper, the event
  writer, the HTTP middleware). They are per process; with `PROMETHEUS_MULTIPROC_DIR` set (serve
  and run_huey set it to `var/metrics/`) every process on a host writes its own file there and
  any web process's `/metrics` adds them up.
- gauges that describe the whole system (active runs, oldest pending run, live workers), read
  from the database at scrape time, so that any host's `/metrics` gives the global picture.

`prometheus_client` reads PROMETHEUS_MULTIPROC_DIR when it is first imported, so it is imported
lazily here, after the commands have set the variable.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

log = logging.getLogger(__name__)

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600, 14400)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


def multiprocess_dir(var_dir: Path, *, clean: bool = False) -> str:
    """Point PROMETHEUS_MULTIPROC_DIR at `var_dir/metrics` unless it is set; make the folder.

    `clean` empties it (serve does, once, before it starts the processes that write there), so
    that counters start from zero with the service rather than adding up every earlier one."""
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or var_dir / "metrics")
    path.mkdir(parents=True, exist_ok=True)
    if clean:
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return str(path)


_creating = threading.Lock()


def m() -> SimpleNamespace:
    """This process's counters and histograms (created on first use). Two threads counting
    their first thing at once must not both create them: the registry refuses a second set,
    and what that thread counted would be lost."""
    with _creating:
        return _metrics()


@cache
def _metrics() -> SimpleNamespace:
    from prometheus_client import Counter, Histogram

    return SimpleNamespace(
        runs_created=Counter(
            "studio_runs_created_total",
            "Runs created",
            ["project", "target", "trigger_kind"],
        ),
        runs_finished=Counter(
            "studio_runs_finished_total",
            "Runs that reached completed, failed or cancelled",
            ["project", "target", "status"],
        ),
        run_duration=Histogram(
            "studio_run_duration_seconds",
            "From a run's first start to its end",
            buckets=DURATION_BUCKETS,
        ),
        run_queue_wait=Histogram(
            "studio_run_queue_wait_seconds",
            "From a run's creation to its first start",
            buckets=WAIT_BUCKETS,
        ),
        events_written=Counter("studio_events_written_total", "Run events stored"),
        sweeper_actions=Counter(
            "studio_sweeper_actions_total", "What the sweeper put right", ["action"]
        ),
        schedule_fire_lag=Histogram(
            "studio_schedule_fire_lag_seconds",
            "From a schedule slot's due time to its run being created",
            buckets=WAIT_BUCKETS,
        ),
        webhook_deliveries=Counter(
            "studio_webhook_deliveries_total", "Outbound webhook deliveries", ["result"]
        ),
        notifications=Counter("studio_notifications_total", "Notifications sent", ["result"]),
        http_requests=Counter(
            "studio_http_requests_total", "HTTP requests answered", ["route", "status"]
        ),
        reuse_process_runs=Counter(
            "studio_reuse_process_runs_total",
            "Runs of reuse_process tasks, by the process that served them: warm or new",
            ["process"],
        ),
        reuse_processes_ended=Counter(
            "studio_reuse_processes_ended_total",
            "Warm processes of reuse_process tasks ended, by why",
            ["reason"],
        ),
    )


def safely(fn):
    """Counting must never break what is being counted."""

    def wrapped(*args, **kwargs):
        try:
            fn(*args, **kwargs)
        except Exception:
            log.exception("metrics: %s failed", fn.__name__)

    wrapped.__name__ = fn.__name__
    wrapped.__qualname__ = fn.__qualname__
    return wrapped


_slugs: dict[Any, str] = {}
_slugs_lock = threading.Lock()


def project_slug(project_id: Any) -> str:
    with _slugs_lock:
        slug = _slugs.get(project_id)
    if slug is None:
        from .models import Project

        slug = Project.objects.filter(pk=project_id).values_list("slug", flat=True).first() or ""
        with _slugs_lock:
            _slugs[project_id] = slug
    return slug


# --- fed from hooks and call sites -------------------------------------------------------------


@safely
def run_created(run) -> None:
    m().runs_created.labels(project_slug(run.project_id), run.target, run.trigger_kind).inc()


@safely
def run_finished(run) -> None:
    m().runs_finished.labels(project_slug(run.project_id), run.target, run.status).inc()
    if run.started_at is not None:
        if run.completed_at is not None:
            m().run_duration.observe(max(0.0, (run.completed_at - run.started_at).total_seconds()))
        if run.attempt <= 1 and run.created_at is not None:
            wait = (run.started_at - run.created_at).total_seconds()
            m().run_queue_wait.observe(max(0.0, wait))


@safely
def events_written(count: int) -> None:
    m().events_written.inc(count)


@safely
def sweeper_actions(actions: dict[str, int]) -> None:
    for action, count in actions.items():
        if count:
            m().sweeper_actions.labels(action).inc(count)


@safely
def schedule_fired(lag_seconds: float) -> None:
    m().schedule_fire_lag.observe(max(0.0, lag_seconds))


@safely
def webhook_delivery(result: str) -> None:
    m().webhook_deliveries.labels(result).inc()


@safely
def notification(result: str) -> None:
    m().notifications.labels(result).inc()


@safely
def http_request(route: str, status: int) -> None:
    m().http_requests.labels(route, str(status)).inc()


# --- read at scrape time -----------------------------------------------------------------------


class SystemCollector:
    """Gauges of the whole system, from the database, at scrape time."""

    def collect(self):
        from django.db.models import Count, Min
        from django.utils import timezone
        from prometheus_client.core import GaugeMetricFamily

        from .models import ACTIVE_STATUSES, Run, RunStatus

        try:
            now = timezone.now()
            by_status = dict(
                Run.objects.filter(status__in=ACTIVE_STATUSES)
                .values_list("status")
                .annotate(n=Count("pk"))
                .values_list("status", "n")
            )
            oldest = Run.objects.filter(status=RunStatus.PENDING).aggregate(t=Min("created_at"))[
                "t"
            ]
            alive, slots = _workers(now)
        except Exception:
            log.warning("metrics: the database gauges are unavailable", exc_info=True)
            return
        active = GaugeMetricFamily(
            "studio_runs_active", "Runs not finished yet, by status", labels=["status"]
        )
        for status in ACTIVE_STATUSES:
            active.add_metric([str(status)], by_status.get(status, 0))
        yield active
        yield GaugeMetricFamily(
            "studio_oldest_pending_run_age_seconds",
            "Age of the oldest pending run (0 when none)",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "studio_workers_alive", "Worker processes with a recent heartbeat", value=alive
        )
        yield GaugeMetricFamily(
            "studio_worker_slots_in_use", "Runs being executed by workers now", value=slots
        )


def _workers(now) -> tuple[int, int]:
    from django.conf import settings

    from .models import Run, RunStatus, Worker

    slots = Run.objects.filter(status=RunStatus.RUNNING, worker__isnull=False).count()
    fresh = now - timedelta(seconds=settings.STUDIO_WORKER_LOST_SECONDS)
    alive = Worker.objects.alive().filter(heartbeat_at__gte=fresh).count()
    return alive, slots


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets: this host's counters (all its processes) and the global gauges."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    m()  # so that a fresh process still lists its series
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    registry.register(SystemCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward:
    """This process's own registry, minus the platform/process collectors (not `studio_`)."""

    def __init__(self, source):
        self.source = source

    def collect(self):
        for family in self.source.collect():
            if family.name.startswith("studio_"):
                yield family
