"""`manage.py bench`: Studio's run throughput and latency beside raw Huey's, in one invocation.

It never touches your data: the measurement runs in a child process against a scratch database
(a temporary SQLite file, or a throw-away PostgreSQL database next to DATABASE_URL's) and private
queue names on the same queue storage (SqliteHuey file or Redis). Both consumers run as separate
processes with the same number of worker threads.

Phases, each for raw Huey (a no-op task) and for Studio (a no-op task run through the service):
  latency      one at a time: enqueue/create -> started, and -> completed (p50, p95)
  throughput   N at once: items per second until the last one finished
  100k lines   one run printing 100,000 lines: time until they are all stored and the run is done
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

NOOP_TASK = (
    "from runs.definitions import task\n\n\n@task(name='No-op')\ndef run(ctx):\n    return None\n"
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


CHAIN_WORKFLOW = (
    "from runs.workflows import workflow\n\n\n@workflow(name='Chain of 20')\ndef build(wf):\n"
    "    previous = None\n"
    "    for i in range(20):\n"
    "        previous = wf.task(f's{i}', 'noop', after=[previous] if previous else [])\n"
)
MAP_WORKFLOW = (
    "from runs.workflows import workflow\n\n\n@workflow(name='Map of 200')\ndef build(wf):\n"
    "    wf.map('each', 'noop', items=list(range(200)))\n"
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


class Command(BaseCommand):
    help = "Benchmark run throughput and latency against raw Huey on the same storage."

    def add_arguments(self, parser):
        parser.add_argument("--runs", type=int, default=500, help="items in the throughput phase")
        parser.add_argument("--samples", type=int, default=100, help="items in the latency phase")
        parser.add_argument(
            "--chains", type=int, default=3, help="20-step workflow chains for hand-off latency"
        )
        parser.add_argument(
            "--lines", type=int, default=100_000, help="lines printed by the log run"
        )
        parser.add_argument(
            "--inner", action="store_true", help="(internal) measure in this process"
        )
        parser.add_argument(
            "--raw-consumer", action="store_true", help="(internal) run the raw consumer"
        )

    def handle(self, *args, **opts):
        if opts["raw_consumer"]:
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
            return
        if opts["inner"]:
            return self.measure(opts)
        return self.launch(opts)

    # Outer process: scratch database, private queues, then run --inner with them ------------

    def launch(self, opts):
        scratch = Path(tempfile.mkdtemp(prefix="studio-bench-"))
        tasks = scratch / "tasks"
        tasks.mkdir()
        (tasks / "noop.py").write_text(NOOP_TASK)
        (tasks / "lines.py").write_text(LINES_TASK)
        workflows = scratch / "workflows"
        workflows.mkdir()
        (workflows / "chain20.py").write_text(CHAIN_WORKFLOW)
        (workflows / "map200.py").write_text(MAP_WORKFLOW)
        env = {
            **os.environ,
            "STUDIO_TASKS_DIR": str(tasks),
            "STUDIO_WORKFLOWS_DIR": str(workflows),
            "STUDIO_QUEUE_NAME": f"studio-bench-{uuid.uuid4().hex[:8]}",
            "STUDIO_HUEY_FILE": str(scratch / "huey.sqlite3"),
            "STUDIO_VAR_DIR": str(scratch),
            "STUDIO_LOG_LEVEL": "WARNING",
        }
        db = settings.DATABASES["default"]
        pg_name = None
        if db["ENGINE"].endswith("postgresql"):
            import psycopg

            pg_name = f"studio_bench_{uuid.uuid4().hex[:8]}"
            admin = self._pg_url(db, "postgres")
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{pg_name}"')
            env["DATABASE_URL"] = self._pg_url(db, pg_name)
        else:
            env["DATABASE_URL"] = f"sqlite:///{scratch / 'bench.sqlite3'}"
        try:
            cmd = [
                sys.executable,
                str(Path(settings.BASE_DIR) / "manage.py"),
                "bench",
                "--inner",
                "--runs",
                str(opts["runs"]),
                "--samples",
                str(opts["samples"]),
                "--lines",
                str(opts["lines"]),
                "--chains",
                str(opts["chains"]),
            ]
            code = subprocess.call(cmd, env=env, stdin=subprocess.DEVNULL)
        finally:
            if pg_name:
                import psycopg

                with psycopg.connect(self._pg_url(db, "postgres"), autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        if code:
            raise CommandError(f"benchmark failed (exit {code})")

    @staticmethod
    def _pg_url(db: dict, name: str) -> str:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"

    # Inner process: consumers up, measure, print ----------------------------------------------

    def measure(self, opts):
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
                "studio": self.measure_studio(opts),
                "workflows": self.measure_workflows(opts),
            }
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

    def measure_raw(self, huey, noop, opts) -> dict:
        for _ in range(20):  # warm-up
            noop(time.time()).get(blocking=True, timeout=30)
        starts = []
        for _ in range(opts["samples"]):
            t0 = time.time()
            started = noop(t0).get(blocking=True, timeout=30)
            starts.append((started - t0) * 1000)
        t0 = time.time()
        handles = [noop(t0) for _ in range(opts["runs"])]
        for h in handles:
            h.get(blocking=True, timeout=120)
        elapsed = time.time() - t0
        return {
            "throughput": opts["runs"] / elapsed,
            "started_p50": pct(starts, 50),
            "started_p95": pct(starts, 95),
        }

    def measure_studio(self, opts) -> dict:
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

        for _ in range(20):  # warm-up
            wait_done([service.create_run(project, target="task:noop").run.pk], 30, 0.005)
        latency_ids = []
        for _ in range(opts["samples"]):
            run = service.create_run(project, target="task:noop").run
            wait_done([run.pk], 30, 0.005)
            latency_ids.append(run.pk)
        rows = Run.objects.filter(pk__in=latency_ids).values_list(
            "created_at", "started_at", "completed_at"
        )
        started = [(s - c).total_seconds() * 1000 for c, s, _ in rows]
        completed = [(d - c).total_seconds() * 1000 for c, _, d in rows]

        t0 = time.time()
        ids = [service.create_run(project, target="task:noop").run.pk for _ in range(opts["runs"])]
        wait_done(ids, 300, 0.02)
        elapsed = time.time() - t0
        failed = Run.objects.filter(pk__in=ids).exclude(status="completed").count()

        run = service.create_run(project, target="task:lines", input={"lines": opts["lines"]}).run
        wait_done([run.pk], 300, 0.02)
        run.refresh_from_db()
        stored = RunEvent.objects.filter(run=run, event_type="log").count()
        return {
            "throughput": opts["runs"] / elapsed,
            "started_p50": pct(started, 50),
            "started_p95": pct(started, 95),
            "completed_p50": pct(completed, 50),
            "completed_p95": pct(completed, 95),
            "failed": failed,
            "lines_seconds": (run.completed_at - run.started_at).total_seconds(),
            "lines_stored": stored,
            "lines_status": run.status,
        }

    def measure_workflows(self, opts) -> dict:
        """Hand-off latency between consecutive steps of a 20-step chain of no-op tasks, and a
        200-item map next to 200 plain runs created at once."""
        from runs import service
        from runs.models import Project, Run, WorkflowStep

        project, _ = Project.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})

        def wait_done(pk: str, timeout: float) -> Run:
            deadline = time.monotonic() + timeout
            while Run.objects.filter(pk=pk, status__in=["pending", "running", "waiting"]).exists():
                if time.monotonic() > deadline:
                    raise CommandError(f"workflow run {pk} did not finish within {timeout}s")
                time.sleep(0.02)
            return Run.objects.get(pk=pk)

        handoffs: list[float] = []
        for _ in range(opts["chains"]):
            run = wait_done(service.create_run(project, target="workflow:chain20").run.pk, 120)
            if run.status != "completed":
                raise CommandError(f"the chain workflow ended {run.status}: {run.error}")
            children = {
                s.step_id: s.child_run_ids[0]
                for s in WorkflowStep.objects.filter(run=run).only("step_id", "child_run_ids")
            }
            times = {
                r.pk: r
                for r in Run.objects.filter(pk__in=children.values()).only(
                    "started_at", "completed_at"
                )
            }
            for i in range(19):
                done = times[children[f"s{i}"]].completed_at
                started = times[children[f"s{i + 1}"]].started_at
                handoffs.append((started - done).total_seconds() * 1000)

        t0 = time.time()
        ids = [service.create_run(project, target="task:noop").run.pk for _ in range(200)]
        deadline = time.monotonic() + 300
        while Run.objects.filter(pk__in=ids, status__in=["pending", "running", "waiting"]).exists():
            if time.monotonic() > deadline:
                raise CommandError("200 plain runs did not finish within 300s")
            time.sleep(0.02)
        plain = time.time() - t0
        t0 = time.time()
        mapped = wait_done(service.create_run(project, target="workflow:map200").run.pk, 300)
        map_seconds = time.time() - t0
        return {
            "handoff_p50": pct(handoffs, 50),
            "handoff_p95": pct(handoffs, 95),
            "handoffs": len(handoffs),
            "plain_200": plain,
            "map_200": map_seconds,
            "map_status": mapped.status,
        }

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
            f"{os.cpu_count()} CPUs, {opts['runs']} runs, {opts['samples']} latency samples\n"
        )
        w(f"{'metric':<40}{'raw huey':>12}{'studio':>12}{'studio/raw':>12}")
        w("-" * 76)
        w(
            f"{'throughput (items/s, higher is better)':<40}{raw['throughput']:>12.1f}{st['throughput']:>12.1f}"
            f"{st['throughput'] / raw['throughput']:>12.3f}"
        )
        w(
            f"{'enqueue/create -> started p50 (ms)':<40}{raw['started_p50']:>12.2f}{st['started_p50']:>12.2f}"
            f"{st['started_p50'] - raw['started_p50']:>+11.2f}ms"
        )
        w(
            f"{'enqueue/create -> started p95 (ms)':<40}{raw['started_p95']:>12.2f}{st['started_p95']:>12.2f}"
        )
        w(f"{'create -> completed p50 (ms)':<40}{'':>12}{st['completed_p50']:>12.2f}")
        w(f"{'create -> completed p95 (ms)':<40}{'':>12}{st['completed_p95']:>12.2f}")
        w(f"{'log run: started -> all lines stored (s)':<40}{'':>12}{st['lines_seconds']:>12.2f}")
        w("-" * 76)
        w(
            f"log run: {st['lines_stored']:,} of {opts['lines']:,} lines stored, status {st['lines_status']}; "
            f"throughput runs not completed: {st['failed']}"
        )
        w("raw huey stores each no-op's result (its start time), as Studio stores each run's.\n")
        wf = r["workflows"]
        w("Workflows")
        w("-" * 76)
        w(
            f"{'step hand-off p50 (ms, target < 15)':<40}{wf['handoff_p50']:>12.2f}"
            f"   over {wf['handoffs']} hand-offs of 20-step no-op chains"
        )
        w(f"{'step hand-off p95 (ms)':<40}{wf['handoff_p95']:>12.2f}")
        w(f"{'200 plain no-op runs, wall time (s)':<40}{wf['plain_200']:>12.2f}")
        w(
            f"{'200-item map, wall time (s)':<40}{wf['map_200']:>12.2f}"
            f"{wf['map_200'] / wf['plain_200']:>11.2f}x  (target <= 1.3x; {wf['map_status']})"
        )
        w("hand-off: step N's child completed -> step N+1's child started.\n")
