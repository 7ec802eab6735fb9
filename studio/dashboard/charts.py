"""Runs per hour by status, laid out as a stacked SVG bar chart (drawn server-side, no JS)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count
from django.db.models.functions import TruncHour

from runs.models import Project, Run, RunStatus

# Bottom to top; colours come from the same CSS classes as the status badges.
STACK_ORDER = ["completed", "failed", "cancelled", "running", "waiting", "pending"]
WIDTH, HEIGHT = 720, 180
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 36, 22, 8


@dataclass
class Segment:
    status: str
    count: int
    y: float
    height: float


@dataclass
class Bar:
    start: dt.datetime
    x: float
    width: float
    total: int = 0
    segments: list[Segment] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.start.strftime("%H:00")

    @property
    def active(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("pending", "running", "waiting"))

    @property
    def summary(self) -> str:
        parts = [f"{n} {s}" for s in STACK_ORDER if (n := self.counts.get(s))]
        return f"{self.start:%H:00}–{(self.start + dt.timedelta(hours=1)):%H:00}: " + (
            ", ".join(parts) if parts else "no runs"
        )


@dataclass
class Chart:
    bars: list[Bar]
    max_total: int
    ticks: list[tuple[float, int]]
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = PAD_LEFT
    plot_bottom: float = HEIGHT - PAD_BOTTOM

    @property
    def empty(self) -> bool:
        return self.max_total == 0


def _nice_max(value: int) -> int:
    if value <= 4:
        return 4
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000):
        if value <= step * 4:
            return step * 4
    return value


def hourly_counts(project: Project, since: dt.datetime) -> dict[tuple[dt.datetime, str], int]:
    rows = (
        Run.objects.filter(project=project, created_at__gte=since)
        .annotate(hour=TruncHour("created_at"))
        .values_list("hour", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(hour, status): n for hour, status, n in rows}


def build_chart(
    counts: dict[tuple[dt.datetime, str], int], now: dt.datetime, hours: int = 24
) -> Chart:
    """One bar per hour for the last `hours` hours (the current hour last)."""
    current = now.replace(minute=0, second=0, microsecond=0)
    starts = [current - dt.timedelta(hours=hours - 1 - i) for i in range(hours)]
    per_hour: dict[dt.datetime, dict[str, int]] = {s: {} for s in starts}
    for (hour, status), n in counts.items():
        hour = hour.astimezone(dt.UTC) if hour.tzinfo else hour.replace(tzinfo=dt.UTC)
        if hour in per_hour:
            per_hour[hour][status] = per_hour[hour].get(status, 0) + n
    max_total = _nice_max(max((sum(c.values()) for c in per_hour.values()), default=0))
    plot_height = HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = (WIDTH - PAD_LEFT) / hours
    bars = []
    for i, start in enumerate(starts):
        bar = Bar(
            start=start,
            x=PAD_LEFT + i * slot + slot * 0.15,
            width=slot * 0.7,
            counts=per_hour[start],
        )
        y = HEIGHT - PAD_BOTTOM
        for status in STACK_ORDER:
            n = per_hour[start].get(status, 0)
            if not n:
                continue
            h = plot_height * n / max_total
            y -= h
            bar.segments.append(Segment(status, n, round(y, 2), round(h, 2)))
            bar.total += n
        bars.append(bar)
    ticks = [
        (round(HEIGHT - PAD_BOTTOM - plot_height * frac, 2), int(max_total * frac))
        for frac in (0, 0.25, 0.5, 0.75, 1)
    ]
    if not any(b.total for b in bars):
        max_total = 0
    return Chart(bars=bars, max_total=max_total, ticks=ticks)


def status_totals(counts: dict[tuple[dt.datetime, str], int]) -> list[tuple[str, str, int]]:
    """(status, label, count) for every status, in a fixed order, zeros included."""
    totals: dict[str, int] = {}
    for (_, status), n in counts.items():
        totals[status] = totals.get(status, 0) + n
    return [(s.value, s.label, totals.get(s.value, 0)) for s in RunStatus]
