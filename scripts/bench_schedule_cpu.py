"""CPU per fired schedule, in-process: N one-time schedules due at once, fired by engine.tick()
in this process (no worker running), against a scratch database. Prints CPU ms per schedule
(resource.getrusage of this process, so PostgreSQL's own CPU is not counted), the wall time
and the number of statements.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/studio REDIS_URL=redis://127.0.0.1:6379/3 \
        .venv/bin/python scripts/bench_schedule_cpu.py [N] [ROUNDS]

Run it from the checkout to measure (it imports `runs` from the current directory).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")


def main() -> None:
    import django

    django.setup()
    from runs.bench.scratch import scratch_env
    from runs.schedules.bench import TICK_TASK

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with scratch_env({"tick.py": TICK_TASK}) as env:
        env["STUDIO_SCHEDULER"] = "false"
        manage = str(Path(os.getcwd()) / "manage.py")
        subprocess.check_call(
            [sys.executable, manage, "migrate", "-v0"], env=env, stdin=subprocess.DEVNULL
        )
        subprocess.check_call(
            [sys.executable, __file__, "--inner", str(count), str(rounds)],
            env=env,
            stdin=subprocess.DEVNULL,
        )


def inner(count: int, rounds: int) -> None:
    import django

    django.setup()
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone
    from huey.contrib.djhuey import HUEY

    from runs.models import Project, Run, Schedule
    from runs.schedules import engine, store

    project, _ = Project.objects.get_or_create(slug="cpu", defaults={"name": "cpu"})
    results = []
    for r in range(rounds):
        later = timezone.now() + timedelta(hours=1)
        for i in range(count):
            store.create(
                project, {"id": f"r{r}-{i}", "target": "task:tick", "run_at": later.isoformat()}
            )
        slot = timezone.now().replace(microsecond=0)
        Schedule.objects.filter(project=project, done_at__isnull=True).update(
            run_at=slot, next_fire_at=slot
        )
        before = Run.objects.count()
        statements = []

        def counted(execute, sql, params, many, context, statements=statements):
            statements.append(1)
            return execute(sql, params, many, context)

        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        profile = None
        if os.environ.get("PROFILE") and r == rounds - 1:
            import cProfile

            profile = cProfile.Profile()
            profile.enable()
        with connection.execute_wrapper(counted):
            while engine.tick(timezone.now()).schedules:
                pass
        if profile:
            import pstats

            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        fired = Run.objects.count() - before
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        results.append((cpu * 1000 / max(fired, 1), wall, len(statements), fired))
        print(
            f"round {r}: fired {fired}, CPU {cpu * 1000 / max(fired, 1):.2f} ms/schedule, "
            f"wall {wall:.2f} s, {len(statements)} statements"
        )
    HUEY.storage.flush_all()
    cpus = sorted(x[0] for x in results)
    print(f"median CPU ms/schedule: {cpus[len(cpus) // 2]:.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        inner(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
