"""Time the dashboard's hot views against a scratch database full of runs.

    python -m studio.dashboard.bench                       # SQLite file in a temp dir
    python -m studio.dashboard.bench --database-url postgres://postgres@127.0.0.1:5432/studio_dash_bench

Seeds one project with 100,000 runs (mixed statuses, spread over 30 days) and one run with
100,000 log events, then renders each view in-process through Django's test client (so the
figure is server time: URL routing, queries, templates) and prints the median and p95 over a
number of requests, with the number of SQL queries each one made. The scratch database is
created from nothing and dropped again; a PostgreSQL database name must end in "_bench".
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit


def _prepare_database(url: str | None) -> tuple[str, callable]:
    """Return (DATABASE_URL, cleanup) for a fresh scratch database."""
    if not url:
        folder = tempfile.mkdtemp(prefix="studio-dash-bench-")
        path = Path(folder) / "bench.sqlite3"
        return f"sqlite:///{path}", lambda: [p.unlink() for p in Path(folder).glob("*")]
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.endswith("_bench"):
        sys.exit("refusing: the scratch PostgreSQL database name must end in _bench")
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", help="scratch database (default: a temporary SQLite file)"
    )
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    url, cleanup = _prepare_database(args.database_url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    os.environ.setdefault(
        "STUDIO_HUEY_FILE", str(Path(tempfile.gettempdir()) / "studio-dash-bench-huey.sqlite3")
    )
    import django

    django.setup()
    try:
        _run(args)
    finally:
        cleanup()


def _run(args) -> None:
    import datetime as dt
    import random
    import re

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from runs.models import Membership, Project, Run, RunEvent

    # Not setup_test_environment(): its template instrumentation would inflate every figure.
    settings.ALLOWED_HOSTS.append("testserver")
    print(f"database: {connection.vendor}; migrating…", flush=True)
    call_command("migrate", verbosity=0)

    project = Project.objects.create(slug="bench", name="Bench")
    user = get_user_model().objects.create_user("bench", password="x")
    Membership.objects.create(project=project, user=user, role=Membership.Role.ADMIN)

    started = time.perf_counter()
    rng = random.Random(7)
    now = timezone.now()
    statuses = (
        ["completed"] * 80 + ["failed"] * 12 + ["cancelled"] * 5 + ["running", "pending", "waiting"]
    )
    targets = [
        "task:onboard-customer",
        "task:sync-data",
        "task:long-running",
        "task:failing-task",
        "task:reports-weekly",
    ]
    batch = []
    for i in range(args.runs):
        created = now - dt.timedelta(seconds=rng.randint(0, 30 * 86400))
        status = rng.choice(statuses)
        done = status in ("completed", "failed", "cancelled")
        batch.append(
            Run(  # not-a-transition: fake history in the benchmark's scratch database
                project=project,
                status=status,  # not-a-transition: fake history
                target=rng.choice(targets),
                name=f"Bench run {i}",
                input={"customer": f"c{i}", "n": i},
                created_at=created,
                started_at=created,
                completed_at=created + dt.timedelta(seconds=3) if done else None,
                duration_ms=3000 if done else None,
                attempt=1,
                logs="line\n" * 20,
            )
        )
        if len(batch) == 5000:
            Run.objects.bulk_create(batch)
            batch = []
    Run.objects.bulk_create(batch)
    big = Run.objects.create(  # not-a-transition: a fake running run to read
        project=project,
        status="running",  # not-a-transition: fake history
        target="task:long-running",
        name="Chatty run",
        attempt=1,
        started_at=now,
    )
    events = [
        RunEvent(
            run=big,
            event_type="log",
            payload={
                "stream": "stderr" if i % 10 == 0 else "stdout",
                "line": f"processing record {i} of {args.events}",
            },
        )
        if i % 50
        else RunEvent(
            run=big,
            event_type="progress",
            payload={"current": i, "total": args.events, "message": None},
        )
        for i in range(args.events)
    ]
    for start in range(0, len(events), 10_000):
        RunEvent.objects.bulk_create(events[start : start + 10_000])
    last_event = (
        RunEvent.objects.filter(run=big).order_by("-id").values_list("id", flat=True).first()
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(
        f"seeded {args.runs:,} runs and {args.events:,} events in {time.perf_counter() - started:.1f} s\n",
        flush=True,
    )

    client = Client()
    client.force_login(user)
    first_page = client.get("/p/bench/runs/")
    html = first_page.content.decode()
    older = re.search(r"before=([0-9]+~run_[0-9a-f]{32})", html).group(1)
    active_ids = re.findall(r'id="row-(run_[0-9a-f]{32})"', html)
    cases = [
        ("runs list, first page", "/p/bench/runs/", {}),
        ("runs list, page 2 (keyset)", f"/p/bench/runs/?before={older}", {}),
        ("runs list, status=failed", "/p/bench/runs/?status=failed", {}),
        ("runs list, task filter", "/p/bench/runs/?target=task:sync-data", {}),
        (
            "runs list, active-row refresh",
            "/p/bench/runs/?refresh=1&ids=" + ",".join(active_ids[:50]),
            {"HTTP_HX_REQUEST": "true"},
        ),
        ("run detail (100k events)", f"/p/bench/runs/{big.pk}/", {}),
        (
            "run detail, load earlier",
            f"/p/bench/runs/{big.pk}/?before={last_event - 5000}",
            {"HTTP_HX_REQUEST": "true"},
        ),
        (
            "event poll, quiet run",
            f"/p/bench/runs/{big.pk}/events/?after={last_event}",
            {"HTTP_HX_REQUEST": "true"},
        ),
        (
            "event poll, 10 new events",
            f"/p/bench/runs/{big.pk}/events/?after={last_event - 10}",
            {"HTTP_HX_REQUEST": "true"},
        ),
        ("overview (24 h chart)", "/p/bench/", {}),
        ("tasks", "/p/bench/tasks/", {}),
        ("runs list, text search", "/p/bench/runs/?q=c4242", {}),
    ]
    print(f"{'view':34} {'median':>9} {'p95':>9} {'queries':>8}")
    for label, path, headers in cases:
        client.get(path, **headers)  # warm caches (templates, discovery)
        timings = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            response = client.get(path, **headers)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code in (200, 204), (path, response.status_code)
        with CaptureQueriesContext(connection) as queries:
            client.get(path, **headers)
        timings.sort()
        p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
        print(f"{label:34} {statistics.median(timings):7.1f}ms {p95:7.1f}ms {len(queries):8d}")
        if label == "event poll, quiet run":
            for q in queries.captured_queries:
                print(f"    {q['sql'][:150]}")


if __name__ == "__main__":
    main()
