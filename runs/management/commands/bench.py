"""`manage.py bench` (`make bench`): Studio's benchmarks (runs.bench), all or `--only` some."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runs.bench import API_SECTIONS, DASHBOARD_SECTIONS, ENGINE_SECTIONS, SECTIONS, summary
from runs.bench.scratch import scratch_env


def _sections(value: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(s.strip() for s in value.split(",") if s.strip()))
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown section {', '.join(unknown) or value!r}; choose from {', '.join(SECTIONS)}"
        )
    return chosen


class Command(BaseCommand):
    help = (
        "Benchmark Studio on a scratch database: run latency, throughput and log throughput "
        "against raw Huey on the same storage, and the dashboard's hot views. "
        f"Sections: {', '.join(SECTIONS)}."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--only",
            type=_sections,
            default=SECTIONS,
            metavar="SECTION[,SECTION]",
            help=f"run only these sections (of {', '.join(SECTIONS)}); default: all",
        )
        parser.add_argument("--runs", type=int, default=500, help="items in the throughput phase")
        parser.add_argument("--samples", type=int, default=100, help="items in the latency phase")
        parser.add_argument(
            "--chains", type=int, default=3, help="20-step workflow chains for hand-off latency"
        )
        parser.add_argument(
            "--lines", type=int, default=100_000, help="lines printed by the log run"
        )
        parser.add_argument(
            "--dashboard-runs", type=int, default=100_000, help="runs seeded for the dashboard"
        )
        parser.add_argument(
            "--dashboard-events",
            type=int,
            default=100_000,
            help="events of the dashboard's chatty run",
        )
        parser.add_argument("--repeat", type=int, default=30, help="requests per dashboard view")
        parser.add_argument(
            "--inner",
            choices=["engine", "dashboard", "api"],
            help="(internal) measure in this process, against the scratch database it was given",
        )
        parser.add_argument(
            "--api-seconds", type=float, default=10, help="seconds of wrk per API request kind"
        )
        parser.add_argument(
            "--raw-consumer", action="store_true", help="(internal) run the raw consumer"
        )
        parser.add_argument(
            "--invocations",
            type=int,
            default=3,
            help="measure the groups with targets (engine, api) this many times, alternating, "
            "and judge the targets on the medians (default 3; 1 for a quick look)",
        )
        parser.add_argument(
            "--schedules",
            type=int,
            default=500,
            help="schedules due in the same second, fired by 3 worker processes (0 to skip)",
        )

    def handle(self, *args, **opts):
        if opts["raw_consumer"]:
            from runs.bench.engine import run_raw_consumer

            return run_raw_consumer()
        sections = opts["only"]
        if opts["inner"] == "engine":
            from runs.bench.engine import EngineBench

            chosen = tuple(s for s in ENGINE_SECTIONS if s in sections)
            return EngineBench(self.stdout, chosen).measure(opts)
        if opts["inner"] == "dashboard":
            from runs.bench import dashboard

            return dashboard.measure(
                n_runs=opts["dashboard_runs"],
                n_events=opts["dashboard_events"],
                repeat=opts["repeat"],
            )
        if opts["inner"] == "api":
            from runs.bench import api as api_bench

            return api_bench.measure(seconds=opts["api_seconds"], stdout=self.stdout)
        # Each group measures in its own child, against its own scratch database. The groups
        # with targets run `--invocations` times, taking turns; the dashboard once.
        groups = []
        if any(s in ENGINE_SECTIONS for s in sections):
            from runs.bench.engine import LINES_TASK, NOOP_TASK, REUSED_NOOP_TASK
            from runs.schedules.bench import TICK_TASK

            tasks = {
                "noop.py": NOOP_TASK,
                "noop-reused.py": REUSED_NOOP_TASK,
                "lines.py": LINES_TASK,
                "tick.py": TICK_TASK,
            }
            groups.append(("engine", tasks))
        if any(s in API_SECTIONS for s in sections):
            from runs.bench.engine import NOOP_TASK

            groups.append(("api", {"noop.py": NOOP_TASK}))
        invocations = max(1, opts["invocations"]) if groups else 0
        figures: list[dict] = []
        for i in range(invocations):
            if invocations > 1:
                self.stdout.write(f"\n=== Invocation {i + 1} of {invocations} ===")
            with tempfile.TemporaryDirectory(prefix="studio-bench-results-") as folder:
                results = str(Path(folder) / "results.json")
                for group, tasks in groups:
                    self._child(group, sections, opts, tasks, results)
                figures.append(summary.read(results))
        if any(s in DASHBOARD_SECTIONS for s in sections):
            self.stdout.write("\nDashboard views (server time, in-process):")
            self._child("dashboard", sections, opts, tasks=None)
        if figures:
            summary.report(self.stdout.write, figures)

    def _child(self, group: str, sections, opts, tasks, results: str | None = None) -> None:
        cmd = [
            sys.executable,
            str(Path(settings.BASE_DIR) / "manage.py"),
            "bench",
            "--inner",
            group,
            "--only",
            ",".join(sections),
        ]
        names = (
            "runs",
            "samples",
            "lines",
            "dashboard_runs",
            "dashboard_events",
            "repeat",
            "schedules",
            "api_seconds",
        )
        for name in names:
            cmd += [f"--{name.replace('_', '-')}", str(opts[name])]
        with scratch_env(tasks) as env:
            if results:
                env[summary.RESULTS_ENV] = results
            code = subprocess.call(cmd, env=env, stdin=subprocess.DEVNULL)
        if code:
            raise CommandError(f"benchmark ({group}) failed (exit {code})")
