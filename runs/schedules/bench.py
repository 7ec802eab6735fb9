"""The scheduler's part of `manage.py bench`: many schedules due in the same second, several
worker processes racing to fire them. Counts duplicates and misses, and measures firing lag
(a run's created_at minus its slot)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from ..models import Project, Run, Schedule
from . import store

TICK_TASK = (
    "from runs.definitions import task\n\n\n"
    "@task(name='Tick', schedulable=True)\ndef run(ctx):\n    return None\n"
)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(manage: str, *, count: int, extra_workers: int, lead_seconds: float = 4.0) -> dict:
    """`count` one-time schedules due at one instant; `extra_workers` more consumers beside the
    one the benchmark already runs. Returns the figures for report()."""
    quiet = {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
    }
    procs = [
        subprocess.Popen([sys.executable, manage, "run_huey", "--skip-checks"], **quiet)
        for _ in range(extra_workers)
    ]
    try:
        time.sleep(3)  # the extra consumers import Django and start their loops
        project, _ = Project.objects.get_or_create(
            slug="bench-schedules", defaults={"name": "Schedules benchmark"}
        )
        later = timezone.now() + timedelta(hours=1)
        for i in range(count):
            store.create(
                project, {"id": f"due-{i}", "target": "task:tick", "run_at": later.isoformat()}
            )
        # Then make them all due at one instant, a few seconds from now, in one statement.
        slot = (timezone.now() + timedelta(seconds=lead_seconds)).replace(microsecond=0)
        Schedule.objects.filter(project=project).update(run_at=slot, next_fire_at=slot)
        runs = Run.objects.filter(project=project, trigger_kind=Run.Trigger.SCHEDULE)
        deadline = time.monotonic() + lead_seconds + 60
        while Schedule.objects.filter(project=project, done_at__isnull=True).exists():
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        lags = [(c - slot).total_seconds() for c in runs.values_list("created_at", flat=True)]
        # Created is when the run row was written; started is when a worker began executing
        # it, which also waits for the firing transaction to commit and for a free worker.
        wait_until = time.monotonic() + 120
        while runs.filter(started_at__isnull=True).exists() and time.monotonic() < wait_until:
            time.sleep(0.2)
        started = [
            (s - slot).total_seconds()
            for s in runs.exclude(started_at__isnull=True).values_list("started_at", flat=True)
        ]
        per_schedule = Counter(runs.values_list("schedule_id", flat=True))
        duplicates = sum(n - 1 for n in per_schedule.values() if n > 1)
        misses = count - len(per_schedule)
        single = _single_lag(project)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {
        "schedules": count,
        "workers": extra_workers + 1,
        "runs": len(lags),
        "duplicates": duplicates,
        "misses": misses,
        "lag_p50": _pct(lags, 50),
        "lag_p99": _pct(lags, 99),
        "lag_max": max(lags) if lags else float("nan"),
        "started_p50": _pct(started, 50),
        "started_p99": _pct(started, 99),
        "single_lag": single,
    }


def _single_lag(project: Project) -> float:
    """One schedule on an otherwise idle system: seconds from its slot to its run."""
    slot = (timezone.now() + timedelta(seconds=2.5)).replace(microsecond=0)
    store.create(project, {"id": "single", "target": "task:tick", "run_at": slot.isoformat()})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        created = (
            Run.objects.filter(project=project, schedule_id="single")
            .values_list("created_at", flat=True)
            .first()
        )
        if created:
            return (created - slot).total_seconds()
        time.sleep(0.05)
    return float("nan")


def report(write, r: dict) -> None:
    write(
        f"\nScheduler: {r['schedules']} schedules due in the same second, "
        f"{r['workers']} worker processes, batches of {settings.STUDIO_SCHEDULER_BATCH}"
    )
    write("-" * 76)
    write(f"{'runs created':<40}{r['runs']:>12}")
    write(f"{'duplicates (must be 0)':<40}{r['duplicates']:>12}")
    write(f"{'misses (must be 0)':<40}{r['misses']:>12}")
    write(f"{'firing lag p50 (s, target < 0.5)':<40}{r['lag_p50']:>12.3f}")
    write(f"{'firing lag p99 (s, target < 2)':<40}{r['lag_p99']:>12.3f}")
    write(f"{'firing lag max (s)':<40}{r['lag_max']:>12.3f}")
    write(f"{'slot -> run started p50 (s)':<40}{r['started_p50']:>12.3f}")
    write(f"{'slot -> run started p99 (s)':<40}{r['started_p99']:>12.3f}")
    write(f"{'single due schedule, idle: lag (s, < 1)':<40}{r['single_lag']:>12.3f}")
    write("-" * 76)


__all__ = ["TICK_TASK", "measure", "report"]
