"""The engine's sections of `manage.py bench`: Studio's run latency, throughput and log
throughput beside raw Huey's on the same storage.

Measured in a child process (see runs.bench.scratch) with both consumers as separate processes
with the same number of worker threads; for raw Huey a no-op task, for Studio a no-op task run
created through the service:
  latency      one at a time: enqueue/create -> started, and -> completed (p50, p95)
  throughput   N at once: items per second until the last one finished
  logs         one run printing 100,000 lines: time until they are all stored and the run is done
Latency and throughput are measured twice for Studio: with a process per run (the default), and
for a no-op task with @task(reuse_process=True), whose runs share warm processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from . import cpu, summary

NOOP_TASK = (
    "from runs.definitions import task\n\n\n@task(name='No-op')\ndef run(ctx):\n    return None\n"
)
REUSED_NOOP_TASK = (
    "from runs.definitions import task\n\n\n"
    "@task(name='No-op, reused process', reuse_process=True)\ndef run(ctx):\n    return None\n"
)
LINES_TASK = textwrap.dedent(
    """
    import sys

    from runs.definitions import task


    @task(name='Print lines')
    def run(ctx):
        write = sys.stdout.write
        for i in range(ctx.input.get('lines', 100000)):
            write(f'log line {i} of the benchmark\\n')
        return {'printed': ctx.input.get('lines', 100000)}
    """
)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def raw_huey():
    """A Huey like Studio's (same storage), on its own queue, with one no-op task."""
    from huey import RedisHuey, SqliteHuey

    name = os.environ["STUDIO_QUEUE_NAME"] + "-raw"
    if settings.REDIS_URL:
        huey = RedisHuey(name, url=settings.REDIS_URL, blocking=True)
    else:
        huey = SqliteHuey(name, filename=settings.HUEY["filename"] + "-raw")

    @huey.task(name="noop")
    def noop(enqueued_at):
        return time.time()

    return huey, noop


def run_raw_consumer() -> None:
    """The raw Huey consumer process the measurement compares against."""
    huey, _ = raw_huey()
    huey.create_consumer(
        workers=settings.STUDIO_WORKERS,
        worker_type="thread",
        **{
            k: v
            for k, v in settings.HUEY["consumer"].items()
            if k in ("initial_delay", "backoff", "max_delay")
        },
    ).run()


class EngineBench:
    """Runs in the child process: start both consumers, measure the chosen sections, print."""

    def __init__(self, stdout, sections: tuple[str, ...]):
        self.stdout = stdout
        self.sections = sections

    def measure(self, opts: dict) -> None:
        call_command("migrate", verbosity=0)
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        quiet = {
            "stdin": subprocess.DEVNULL,
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.DEVNULL,
        }
        raw_proc = subprocess.Popen([sys.executable, manage, "bench", "--raw-consumer"], **quiet)
        studio_proc = subprocess.Popen(
            [sys.executable, manage, "run_huey", "--skip-checks"], **quiet
        )
        try:
            time.sleep(3)  # both consumers import Django and start their threads
            huey, noop = raw_huey()
            results = {
                "raw": self.measure_raw(huey, noop, opts),
                "studio": self.measure_studio(opts, studio_proc.pid),
            }
            if "workflows" in self.sections:
                from runs.bench import workflows as workflow_bench

                results["workflows"] = workflow_bench.measure()
            if "scheduler" in self.sections and opts["schedules"]:
                from runs.schedules import bench as schedule_bench

                results["schedules"] = schedule_bench.measure(
                    manage, count=opts["schedules"], extra_workers=2
                )
        finally:
            for proc in (raw_proc, studio_proc):
                proc.terminate()
            for proc in (raw_proc, studio_proc):
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            try:
                huey.storage.flush_all()
                from huey.contrib.djhuey import HUEY

                HUEY.storage.flush_all()
            except Exception:  # noqa: BLE001 - best effort cleanup of private queues
                pass
        self.report(results, opts)
        summary.record(
            {
                f"{group}_{key}": value
                for group, figures in results.items()
                for key, value in figures.items()
            }
        )

    def measure_raw(self, huey, noop, opts) -> dict:
        result: dict = {}
        if not {"latency", "throughput"} & set(self.sections):
            return result  # raw Huey has no log run to compare with
        for _ in range(20):  # warm-up
            noop(time.time()).get(blocking=True, timeout=30)
        if "latency" in self.sections:
            starts = []
            for _ in range(opts["samples"]):
                t0 = time.time()
                started = noop(t0).get(blocking=True, timeout=30)
                starts.append((started - t0) * 1000)
            result.update(started_p50=pct(starts, 50), started_p95=pct(starts, 95))
        if "throughput" in self.sections:
            t0 = time.time()
            handles = [noop(t0) for _ in range(opts["runs"])]
            for h in handles:
                h.get(blocking=True, timeout=120)
            elapsed = time.time() - t0
            result["throughput"] = opts["runs"] / elapsed
        return result

    def measure_studio(self, opts, worker_pid: int) -> dict:
        from runs import service
        from runs.models import Project, Run, RunEvent

        project, _ = Project.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})

        active = ["pending", "running", "waiting"]

        def wait_done(ids, timeout, poll):
            # One indexed query per poll: a single run by pk, or "any run of the project still
            # active" (index project+status). The poll must not steal the CPU it measures.
            query = (
                Run.objects.filter(pk=ids[0])
                if len(ids) == 1
                else Run.objects.filter(project=project)
            )
            query = query.filter(status__in=active)
            deadline = time.monotonic() + timeout
            while query.exists():
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"runs did not finish within {timeout}s; is the worker healthy?"
                    )
                time.sleep(poll)

        result: dict = {}
        # The no-op task with a process per run, then with reused processes ("reuse_" figures).
        for task_id, prefix in (("noop", ""), ("noop-reused", "reuse_")):
            target = f"task:{task_id}"
            for _ in range(20):  # warm-up
                wait_done([service.create_run(project, target=target).run.pk], 30, 0.005)
            if "latency" in self.sections:
                latency_ids = []
                for _ in range(opts["samples"]):
                    run = service.create_run(project, target=target).run
                    wait_done([run.pk], 30, 0.005)
                    latency_ids.append(run.pk)
                rows = Run.objects.filter(pk__in=latency_ids).values_list(
                    "created_at", "started_at", "completed_at"
                )
                started = [(s - c).total_seconds() * 1000 for c, s, _ in rows]
                completed = [(d - c).total_seconds() * 1000 for c, _, d in rows]
                result.update(
                    {
                        f"{prefix}started_p50": pct(started, 50),
                        f"{prefix}started_p95": pct(started, 95),
                        f"{prefix}completed_p50": pct(completed, 50),
                        f"{prefix}completed_p95": pct(completed, 95),
                    }
                )

            if "throughput" in self.sections:
                before = cpu.snapshot(worker_pid)
                t0 = time.time()
                ids = [
                    service.create_run(project, target=target).run.pk for _ in range(opts["runs"])
                ]
                wait_done(ids, 300, 0.02)
                elapsed = time.time() - t0
                result[f"{prefix}throughput"] = opts["runs"] / elapsed
                spent = cpu.per_run(before, cpu.snapshot(worker_pid), opts["runs"])
                result.update({f"{prefix}{key}": value for key, value in spent.items()})
                result[f"{prefix}failed"] = (
                    Run.objects.filter(pk__in=ids).exclude(status="completed").count()
                )

        if "logs" in self.sections:
            run = service.create_run(
                project, target="task:lines", input={"lines": opts["lines"]}
            ).run
            wait_done([run.pk], 300, 0.02)
            run.refresh_from_db()
            result.update(
                lines_seconds=(run.completed_at - run.started_at).total_seconds(),
                lines_stored=RunEvent.objects.filter(run=run, event_type="log").count(),
                lines_status=run.status,
            )
        return result

    def report(self, r, opts):
        raw, st = r["raw"], r["studio"]
        db = (
            "PostgreSQL"
            if settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
            else "SQLite"
        )
        queue = "Redis" if settings.REDIS_URL else "SqliteHuey"
        w = self.stdout.write
        w(
            f"\nStudio benchmark: {db} + {queue}, {settings.STUDIO_WORKERS} worker threads each, "
            f"{os.cpu_count()} CPUs, {opts['runs']} runs, {opts['samples']} latency samples "
            f"(sections: {', '.join(self.sections)})\n"
        )
        wide = 50  # the metric's name
        w(f"{'metric':<{wide}}{'raw huey':>12}{'studio':>12}{'studio/raw':>12}")
        w("-" * (wide + 36))
        for prefix, label in (("", ""), ("reuse_", ", reuse_process")):
            if f"{prefix}throughput" in st:
                name = f"throughput{label} (items/s)"
                value = st[f"{prefix}throughput"]
                w(
                    f"{name:<{wide}}{raw['throughput']:>12.1f}{value:>12.1f}"
                    f"{value / raw['throughput']:>12.3f}"
                )
            if f"{prefix}started_p50" in st:
                for p in (50, 95):
                    name = f"enqueue/create -> started p{p}{label} (ms)"
                    value = st[f"{prefix}started_p{p}"]
                    w(
                        f"{name:<{wide}}{raw[f'started_p{p}']:>12.2f}{value:>12.2f}"
                        + (f"{value - raw['started_p50']:>+11.2f}ms" if p == 50 else "")
                    )
                for p in (50, 95):
                    name = f"create -> completed p{p}{label} (ms)"
                    w(f"{name:<{wide}}{'':>12}{st[f'{prefix}completed_p{p}']:>12.2f}")
        if "lines_seconds" in st:
            w(
                f"{'log run: started -> all lines stored (s)':<{wide}}{'':>12}{st['lines_seconds']:>12.2f}"
            )
        w("-" * (wide + 36))
        if "lines_seconds" in st:
            w(
                f"log run: {st['lines_stored']:,} of {opts['lines']:,} lines stored, status {st['lines_status']}"
            )
        if "failed" in st:
            w(f"throughput runs not completed: {st['failed']}")
        if "reuse_failed" in st:
            w(f"reuse_process throughput runs not completed: {st['reuse_failed']}")
        cpu.report(w, st)
        cpu.report(w, st, prefix="reuse_")
        w("raw huey stores each no-op's result (its start time), as Studio stores each run's.\n")
        if "workflows" in r:
            from runs.bench import workflows as workflow_bench

            workflow_bench.report(w, r["workflows"])
        if "schedules" in r:
            from runs.schedules import bench as schedule_bench

            schedule_bench.report(w, r["schedules"])
