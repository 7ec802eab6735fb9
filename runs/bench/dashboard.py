"""The dashboard section of `manage.py bench`: the hot views' server time over a big project.

Seeds one project with 100,000 runs (mixed statuses, spread over 30 days) and one run with
100,000 log events, then renders each view in-process through Django's test client (so the
figure is server time: URL routing, queries, templates) and prints the median and p95 over a
number of requests, with the number of SQL queries each one made. Runs in a child process
against a scratch database (see runs.bench.scratch).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import statistics
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import RUN_ID_RE, Membership, Project, Run, RunEvent


def measure(*, n_runs: int, n_events: int, repeat: int) -> None:
    """Seed `n_runs` runs and a run of `n_events` events, then time each view `repeat` times."""
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
    for i in range(n_runs):
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
                error={
                    "message": f"upstream {i % 97} answered 503 for batch b{i}",
                    "code": "task_error",
                    "detail": None,
                }
                if status == "failed"
                else None,
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
                "line": f"processing record {i} of {n_events}",
            },
        )
        if i % 50
        else RunEvent(
            run=big,
            event_type="progress",
            payload={"current": i, "total": n_events, "message": None},
        )
        for i in range(n_events)
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
        f"seeded {n_runs:,} runs and {n_events:,} events in {time.perf_counter() - started:.1f} s\n",
        flush=True,
    )

    client = Client()
    client.force_login(user)
    first_page = client.get("/p/bench/runs/")
    html = first_page.content.decode()
    older = re.search(rf"before=([0-9]+~{RUN_ID_RE.pattern})", html).group(1)
    active_ids = re.findall(rf'id="row-({RUN_ID_RE.pattern})"', html)
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
            f"/p/bench/runs/{big.pk}/?before={max(1, last_event - 5000)}",
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
        # Issue 13: search covers error messages too; under 50 ms at 100,000 runs on PostgreSQL.
        ("runs list, error search", "/p/bench/runs/?q=batch+b4243", {}),
        ("runs list, search, no match", "/p/bench/runs/?q=zzqqxx", {}),
        (
            "log search (100k events)",
            f"/p/bench/runs/{big.pk}/?q=record+99998",
            {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "log-card"},
        ),
        ("overview, failures grouped", "/p/bench/", {}),
    ]
    print(f"{'view':34} {'median':>9} {'p95':>9} {'queries':>8}")
    for label, path, headers in cases:
        client.get(path, **headers)  # warm caches (templates, discovery)
        timings = []
        for _ in range(repeat):
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
    _search_sql(project, repeat)


def _search_sql(project, repeat: int) -> None:
    """Issue 13's figure: the runs search's own query (input and error message), without the
    page around it, and on PostgreSQL the plan that shows the trigram index at work."""
    from runs.models.search import matching

    page_size = 50  # the runs list's page
    print()
    for text in ("c4242", "batch b4243", "zzqqxx"):
        qs = Run.objects.owned_by(project).search(text).order_by("-created_at", "-id")
        qs = qs[: page_size + 1]
        timings = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            list(qs.all())
            timings.append((time.perf_counter() - t0) * 1000)
        timings.sort()
        print(f"{'search query (SQL) ' + repr(text):34} {statistics.median(timings):7.1f}ms")
    if connection.vendor == "postgresql":
        sql, params = (
            matching(project.runs.all(), "batch b4243")
            .order_by("-created_at", "-id")[: page_size + 1]
            .query.sql_with_params()
        )
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN ANALYZE {sql}", params)
            plan = [row[0] for row in cursor.fetchall()]
        uses_index = any("run_search_trgm" in line for line in plan)
        print(f"    trigram index used: {uses_index}; {plan[-1].strip()}")
