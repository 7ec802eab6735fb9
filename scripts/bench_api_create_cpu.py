"""CPU per `POST /api/runs`, in-process: the web process's share of a create, measured by
process time rather than by a request rate (which other work on a shared machine moves).

Each round starts a fresh process on a scratch database with the API benchmark's tasks directory
(one no-op task), posts the API benchmark's body through Django's WSGI handler (every middleware,
ninja's routing, auth and parsing, the INSERT, the enqueue: all that a gunicorn worker runs for
the request, minus gunicorn itself), and prints the CPU milliseconds per create. No worker runs:
the queue is emptied after each round.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/13 \
        .venv/bin/python scripts/bench_api_create_cpu.py [--requests N] [--rounds R] \
        [--callgrind] [--sample] [--profile FILE] [--bare] [CHECKOUT ...]

With several checkouts (directories holding another version of Studio; the default is the
current directory), the rounds take turns between them, so that each comparison is made in one
invocation; the summary gives each one's median and its ratio to the first's. `--callgrind`
counts instructions instead of CPU time (user space only: the system calls of the two round
trips are not in it); `--sample` and `--profile` show where one more round's time goes;
`--bare` measures the benchmark's bare route, the floor under any API request. Beside the
process's own CPU, the CPU of the PostgreSQL backend serving it (from /proc, so only for a
server on this host that this user can read).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkouts", nargs="*", default=[os.getcwd()])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of one round of the first checkout")
    parser.add_argument(
        "--sample", action="store_true", help="print where one more round's CPU goes (sampled)"
    )
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="count instructions per create under valgrind instead (repeatable; slow: use "
        "--requests 300 or so)",
    )
    parser.add_argument(
        "--bare",
        action="store_true",
        help="GET the benchmark's bare route instead: the floor of any API request",
    )
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.inner:
        inner(opts)
        return
    checkouts = [str(Path(c).resolve()) for c in opts.checkouts]
    sys.path.insert(0, checkouts[0])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    import django

    django.setup()
    from runs.bench.engine import NOOP_TASK
    from runs.bench.scratch import scratch_env

    figures: dict[str, list[float]] = {c: [] for c in checkouts}
    database: dict[str, list[float]] = {c: [] for c in checkouts}
    with scratch_env({"noop.py": NOOP_TASK}) as env:
        env["STUDIO_SCHEDULER"] = "false"
        subprocess.check_call(
            [sys.executable, str(Path(checkouts[0]) / "manage.py"), "migrate", "-v0"],
            env=env,
            cwd=checkouts[0],
            stdin=subprocess.DEVNULL,
        )
        command = [sys.executable, os.path.abspath(__file__), "--inner"]
        command += ["--requests", str(opts.requests), "--warmup", str(opts.warmup)]
        if opts.bare:
            command.append("--bare")
            env["STUDIO_BENCH_ENDPOINT"] = "true"
        unit = "ms"
        if opts.callgrind:
            unit = "M instructions"
            env["STUDIO_TOKEN_CACHE_SECONDS"] = "3600"  # valgrind is ~100x slower than the clock
            command = [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=starmap_next",  # on while a create runs (see post())
                "--callgrind-out-file=/dev/null",
                *command,
                "--callgrind",
            ]
        for r in range(opts.rounds):
            for checkout in checkouts if r % 2 == 0 else checkouts[::-1]:
                run = subprocess.run(
                    command,
                    env=env,
                    cwd=checkout,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                if opts.callgrind:
                    collected = int(run.stderr.split("Collected :")[1].split()[0])
                    figure = collected / opts.requests / 1e6
                else:
                    figure, pg = map(float, run.stdout.split()[-2:])
                    database[checkout].append(pg)
                figures[checkout].append(figure)
                also = f" (PostgreSQL: {pg:.3f} ms)" if database[checkout] else ""
                print(f"round {r + 1} {checkout}: {figure:.3f} {unit}{also}", flush=True)
        extra = ["--profile", opts.profile] if opts.profile else []
        extra += ["--sample"] if opts.sample else []
        if extra:
            subprocess.check_call(
                [*command, *extra],
                env=env,
                cwd=checkouts[0],
                stdin=subprocess.DEVNULL,
            )
    if not opts.rounds:
        return
    first = statistics.median(figures[checkouts[0]])
    for checkout, values in figures.items():
        median = statistics.median(values)
        spread = f"{min(values):.3f}-{max(values):.3f}"
        print(
            f"{checkout}: median {median:.3f} {unit} per request ({spread}), x{median / first:.3f}"
        )
        if database[checkout]:
            pg = database[checkout]
            print(
                f"  and its PostgreSQL backend: median {statistics.median(pg):.3f} ms CPU "
                f"per request ({min(pg):.3f}-{max(pg):.3f})"
            )


def inner(opts) -> None:
    requests, warmup, profile, sample, callgrind = (
        opts.requests,
        opts.warmup,
        opts.profile,
        opts.sample,
        opts.callgrind,
    )
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    import django
    from django.conf import settings

    django.setup()
    from runs.metrics import multiprocess_dir

    multiprocess_dir(settings.VAR_DIR)  # counted as `serve` counts: into per-process files
    if callgrind:
        import studio.api

        studio.api.HEALTH_CHECK_EVERY_SECONDS = 3600  # as often per request as at full speed
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from huey.contrib.djhuey import HUEY

    from runs.models import ApiToken, Project

    project, _ = Project.objects.get_or_create(slug="cpu", defaults={"name": "cpu"})
    _, secret = ApiToken.issue(project, "cpu")
    with connection.cursor() as cursor:  # every round starts from an empty table
        cursor.execute("DELETE FROM runs_runevent")
        cursor.execute("DELETE FROM runs_run")
    body = json.dumps(
        {
            "kind": "task",
            "owner": {"kind": "project", "id": str(project.id)},
            "request": {"target": "task:noop", "input": {}},
        }
    ).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/runs",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": f"Bearer {secret}",
        "wsgi.url_scheme": "http",
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.errors": sys.stderr,
    }
    if opts.bare:
        environ.update(REQUEST_METHOD="GET", PATH_INFO="/api/_bench/bare", CONTENT_LENGTH="0")
        body = b""
    handler = WSGIHandler()
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def post_one() -> None:
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(body)
        response = handler(env, start_response)
        b"".join(response)
        response.close()

    def post(n: int) -> None:
        # Through starmap: callgrind counts only inside starmap_next (--toggle-collect).
        for _ in itertools.starmap(post_one, itertools.repeat((), n)):
            pass

    for _ in range(warmup):  # not through starmap: not counted
        post_one()
    if sample:
        sampled(post, requests)
    elif profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not the waits on the database
        profiler.runcall(post, requests)
        profiler.dump_stats(profile)
    else:
        pg0 = _backend_cpu()
        t0 = time.process_time()
        post(requests)
        cpu = time.process_time() - t0
        pg = _backend_cpu() - pg0
    HUEY.storage.flush_queue()
    expected = "200" if opts.bare else "202"
    bad = [s for s in statuses if not s.startswith(expected)]
    if bad:
        raise SystemExit(f"{len(bad)} requests did not answer {expected}: {bad[:3]}")
    if not (profile or sample):
        print(f"cpu_ms_per_request {cpu * 1000 / requests:.4f} {pg * 1000 / requests:.4f}")


def _backend_cpu() -> float:
    """CPU seconds the PostgreSQL backend serving this process has used (0 elsewhere, or when
    the server's processes cannot be read: another host, another user)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sampled(fn, *args, interval: float = 0.0002, top: int = 110) -> None:
    """Run fn(*args), sampling the Python stack on the process's CPU clock (SIGPROF); print the
    functions holding most samples, inclusive (anywhere on the stack) and self (on top)."""
    import collections
    import signal

    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    samples = [0]

    def where(frame) -> str:
        code = frame.f_code
        path = code.co_filename
        for cut in ("site-packages/", "python3.11/", os.getcwd() + "/"):
            if cut in path:
                path = path.split(cut, 1)[1]
        return f"{path}:{code.co_firstlineno}({code.co_name})"

    def on_sample(signum, frame) -> None:
        samples[0] += 1
        own[where(frame)] += 1
        seen = set()
        while frame is not None:
            name = where(frame)
            if name not in seen:
                seen.add(name)
                inclusive[name] += 1
            frame = frame.f_back

    signal.signal(signal.SIGPROF, on_sample)
    signal.setitimer(signal.ITIMER_PROF, interval, interval)
    try:
        fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
    total = samples[0] or 1
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}: % of {total} samples")
        for name, count in counter.most_common(top):
            print(f"{100 * count / total:6.1f}  {name}")


if __name__ == "__main__":
    main()
