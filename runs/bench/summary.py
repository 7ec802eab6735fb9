"""The targets table: each target's figure over several invocations of the benchmark, their
median, and whether the median meets the target.

One invocation on a shared machine is one draw from a noisy distribution, so `manage.py bench`
runs its measuring groups `--invocations` times (3 by default, alternating groups so that a burst
of other work lands on all of them alike) and judges the medians. A ratio (Studio against raw
Huey, an API route against the bare one) is taken within each invocation, then its median: both
sides of a ratio share that invocation's conditions.

Each measuring child records its figures in the JSON file named by STUDIO_BENCH_RESULTS (when
set); the parent reads them back after each invocation.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass

RESULTS_ENV = "STUDIO_BENCH_RESULTS"


def record(figures: dict[str, float]) -> None:
    """In a measuring child: add `figures` to this invocation's results file, if there is one."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    try:
        with open(path) as f:
            known = json.load(f)
    except (FileNotFoundError, ValueError):
        known = {}
    known.update({k: v for k, v in figures.items() if isinstance(v, int | float)})
    with open(path, "w") as f:
        json.dump(known, f)


def read(path: str) -> dict[str, float]:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


@dataclass(frozen=True)
class Target:
    label: str
    key: str  # the figure in the results, or computed by `value`
    goal: str  # as printed
    met: Callable[[float], bool]
    unit: str = ""
    value: Callable[[dict], float | None] | None = None
    optional: bool = False  # beyond what an issue asked for

    def of(self, figures: dict) -> float | None:
        if self.value is not None:
            try:
                return self.value(figures)
            except (KeyError, ZeroDivisionError, TypeError):
                return None
        return figures.get(self.key)


def _ratio(top: str, bottom: str) -> Callable[[dict], float]:
    return lambda f: f[top] / f[bottom]


# The issues' targets (performance, workflows, schedules), on PostgreSQL + Redis.
TARGETS = (
    Target(
        "throughput, x raw Huey",
        "throughput_ratio",
        ">= 0.25",
        lambda v: v >= 0.25,
        "x",
        _ratio("studio_throughput", "raw_throughput"),
    ),
    Target(  # issue 15's optional one: no-op runs of a @task(reuse_process=True)
        "throughput, reuse_process, x raw Huey",
        "reuse_throughput_ratio",
        ">= 0.5",
        lambda v: v >= 0.5,
        "x",
        _ratio("studio_reuse_throughput", "raw_throughput"),
        optional=True,
    ),
    Target("create -> completed p50", "studio_completed_p50", "< 8", lambda v: v < 8, " ms"),
    Target("create -> completed p95", "studio_completed_p95", "< 15", lambda v: v < 15, " ms"),
    Target("100,000 log lines stored", "studio_lines_seconds", "< 1", lambda v: v < 1, " s"),
    Target(
        "GET /api/runs/{id}, x bare",
        "api_run_ratio",
        ">= 0.5",
        lambda v: v >= 0.5,
        "x",
        _ratio("api_run_rps", "api_bare_rps"),
    ),
    Target(
        "quiet events poll, x bare",
        "api_poll_ratio",
        ">= 0.5",
        lambda v: v >= 0.5,
        "x",
        _ratio("api_poll_rps", "api_bare_rps"),
    ),
    Target("POST /api/runs", "api_create_rps", ">= 250", lambda v: v >= 250, " /s"),
    Target("workflow step hand-off p50", "workflows_handoff_p50", "< 15", lambda v: v < 15, " ms"),
    Target(
        "200-item map, x 200 plain runs",
        "workflows_map_ratio",
        "<= 1.3",
        lambda v: v <= 1.3,
        "x",
        _ratio("workflows_map_200", "workflows_plain_200"),
    ),
    Target("schedule firing lag p50", "schedules_lag_p50", "< 0.5", lambda v: v < 0.5, " s"),
    Target("schedule firing lag p99", "schedules_lag_p99", "< 2", lambda v: v < 2, " s"),
)


def report(write: Callable[[str], None], invocations: list[dict]) -> None:
    """The targets measured in these invocations: each value, the median, met or not."""
    rows = []
    for target in TARGETS:
        values = [v for v in (target.of(f) for f in invocations) if v is not None]
        if values:
            rows.append((target, values, statistics.median(values)))
    if not rows:
        return
    n = len(invocations)
    write(f"\nTargets: median of {n} invocation{'s' if n != 1 else ''} (each value in brackets)")
    write("-" * 110)
    for target, values, median in rows:
        each = " / ".join(_fmt(v) for v in values)
        verdict = "met" if target.met(median) else "NOT met"
        write(
            f"{target.label:<38}{_fmt(median) + target.unit:>12}  {'(' + each + ')':<26}"
            f"target {target.goal}{target.unit}{' (optional)' if target.optional else ''}: "
            f"{verdict}"
        )
    write("-" * 110)
    write(
        "Ratios are taken within each invocation, then their median. Judge these on PostgreSQL "
        "+ Redis on a machine otherwise quiet; any figure is worse under load.\n"
    )
    _cpu_budget(write, invocations)
    _cpu_budget(write, invocations, "reuse_")


def _cpu_budget(write: Callable[[str], None], invocations: list[dict], prefix: str = "") -> None:
    """The CPU a no-op run cost each part (runs/bench/cpu.py), median over the invocations;
    with `prefix` "reuse_", a no-op run of a reuse_process task."""
    from .cpu import PARTS

    keys = [f"studio_{prefix}cpu_{part.replace(' ', '_')}" for part in PARTS]
    keys.append(f"studio_{prefix}cpu_total")
    if not all(key in figures for figures in invocations for key in keys):
        return
    which = ", reuse_process" if prefix else ""
    write(f"CPU per no-op run in the throughput phase{which}, ms (median; each value in brackets)")
    for label, key in zip([*PARTS, "total"], keys, strict=True):
        values = [figures[key] for figures in invocations]
        each = " / ".join(f"{v:.2f}" for v in values)
        write(f"  {label:<16}{statistics.median(values):>8.2f}  ({each})")
    write("")


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"
