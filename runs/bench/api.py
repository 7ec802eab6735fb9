"""The `api` section of `manage.py bench`: the REST API's request rate over real HTTP.

Serves Studio the way `make run` does (`manage.py serve`: gunicorn's gthread workers and the
embedded worker, same middleware and settings) against the scratch database, with one extra
route switched on by STUDIO_BENCH_ENDPOINT: `GET /api/_bench/bare`, a django-ninja view with no
auth that returns a small fixed object. It is the floor a request cannot go below (Django's
middleware, ninja's routing and rendering, gunicorn), measured beside, with `wrk`:
  bare   GET /api/_bench/bare
  run    GET /api/runs/{id}                            (a completed run, bearer token)
  poll   GET /api/runs/{id}/events?after_event_id=N    (N its last event: an empty page)
  create POST /api/runs                                (no-op task runs the embedded worker
                                                        executes meanwhile)
Each figure is requests per second in the same invocation (the three GETs take turns in short
rounds; medians), so the ratios to `bare` are what to compare between machines, and beside it
the CPU time the web processes spent per request, which other work on the machine barely moves.
Targets: run and poll >= 0.5 x bare; create >= 250 /s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from . import summary

TARGET_READ_RATIO = 0.5
TARGET_CREATES_PER_SECOND = 250.0
CONNECTIONS = 16
ROUNDS = 3
WRK_THREADS = 2


def ensure_wrk() -> str:
    """The `wrk` binary: Debian's package, installed with apt-get when missing and root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.call(["apt-get", "update", "-qq"], **quiet)
        subprocess.call(["apt-get", "install", "-y", "-qq", "wrk"], **quiet)
        found = shutil.which("wrk")
    if not found:
        raise CommandError("the api benchmark needs wrk: run 'sudo apt-get install -y wrk'")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(url: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def _wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise CommandError(f"api benchmark: {what} within {timeout:.0f}s")
        time.sleep(0.1)


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(m?s)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors:.*")


def wrk(binary: str, url: str, seconds: float, script: Path | None = None) -> dict:
    """One wrk run: good (2xx) answers per second, the total, and what went wrong."""
    # wrk takes whole seconds only ("3.3s" is a usage error): the default 10 s over 3 rounds
    cmd = [binary, f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s"]
    cmd.append("--latency")
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    total = _TOTAL.search(out)
    rps = _RPS.search(out)
    if total is None or rps is None:
        raise CommandError(f"api benchmark: could not read wrk's output:\n{out}")
    count = int(total.group(1))
    elapsed = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    bad = int(m.group(1)) if (m := _NON_2XX.search(out)) else 0
    errors = m.group(0) if (m := _ERRORS.search(out)) else ""
    return {
        "rps": (count - bad) / elapsed,
        "requests": count,
        "bad": bad,
        "errors": errors,
        "p50": (m.group(1) if (m := re.search(r"^\s+50%\s+(\S+)", out, re.M)) else "?"),
    }


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def web_cpu_seconds(server_pid: int) -> float:
    """CPU time (user + system) used so far by the gunicorn processes under `server_pid`:
    noise from other work on the machine barely moves it, unlike a request rate."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _descendants(server_pid):
        try:
            if b"gunicorn" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def _median_figure(results: list[dict]) -> dict:
    middle = len(results) // 2
    figure = dict(sorted(results, key=lambda r: r["rps"])[middle])
    figure["cpu_ms"] = sorted(r["cpu_ms"] for r in results)[middle]
    figure["bad"] = sum(r["bad"] for r in results)
    figure["errors"] = "; ".join(sorted({r["errors"] for r in results if r["errors"]}))
    return figure


def _post_script(folder: Path, token: str, body: dict) -> Path:
    script = folder / "create.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    return script


def _token_script(folder: Path, token: str) -> Path:
    script = folder / "get.lua"
    script.write_text(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
    return script


def measure(*, seconds: float, stdout) -> None:
    """In the bench's child process: serve Studio on the scratch database and measure."""
    from runs.models import ApiToken, Project, Run, RunEvent

    binary = ensure_wrk()
    call_command("migrate", verbosity=0)
    project = Project.objects.create(slug="bench-api", name="API benchmark")
    _, token = ApiToken.issue(project, "bench")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    env = {**os.environ, "STUDIO_BENCH_ENDPOINT": "true"}
    server = subprocess.Popen(
        [sys.executable, manage, "serve", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    folder = Path(tempfile.mkdtemp(prefix="studio-bench-api-"))
    try:
        _wait_until(
            lambda: _request(f"{base}/api/_bench/bare")[0] == 200, 60, "the server did not start"
        )
        create = {
            "kind": "task",
            "owner": {"kind": "project", "id": str(project.id)},
            "request": {"target": "task:noop", "input": {}},
        }
        status, body = _request(f"{base}/api/runs", token, create)
        if status != 202:
            raise CommandError(f"api benchmark: creating a run answered {status}")
        run_id = body["run"]["run_id"]
        _wait_until(
            lambda: Run.objects.filter(pk=run_id, status="completed").exists(),
            60,
            "the first run did not complete",
        )
        last = (
            RunEvent.objects.filter(run_id=run_id).order_by("-id").values_list("id", flat=True)[0]
        )
        get_script = _token_script(folder, token)
        urls = {
            "bare": (f"{base}/api/_bench/bare", None),
            "run": (f"{base}/api/runs/{run_id}", get_script),
            "poll": (f"{base}/api/runs/{run_id}/events?after_event_id={last}", get_script),
        }
        for url, script in urls.values():  # each answers as it should, and warms the workers
            wrk(binary, url, 1, script)
        urls["create"] = (f"{base}/api/runs", _post_script(folder, token, create))

        def measured(name: str, window: float) -> dict:
            url, script = urls[name]
            cpu = web_cpu_seconds(server.pid)
            figure = wrk(binary, url, window, script)
            good = figure["requests"] - figure["bad"]
            figure["cpu_ms"] = (web_cpu_seconds(server.pid) - cpu) * 1000 / max(1, good)
            return figure

        # The reads take turns in ROUNDS short windows, so that a burst of other work on the
        # machine lands on all three alike; each figure is its median over the rounds.
        rounds: dict[str, list[dict]] = {name: [] for name in ("bare", "run", "poll")}
        for _ in range(ROUNDS):
            for name, results in rounds.items():
                results.append(measured(name, seconds / ROUNDS))
        figures = {name: _median_figure(results) for name, results in rounds.items()}
        before = Run.objects.count()
        figures["create"] = measured("create", seconds)
        created = Run.objects.count() - before
        done_in_window = Run.objects.filter(status="completed").count()
        # Let the worker finish what was queued (bounded), so the report can say it kept up.
        t0 = time.monotonic()
        active = Run.objects.exclude(status__in=("completed", "failed", "cancelled"))
        deadline = t0 + 120
        while active.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        drain = time.monotonic() - t0
        left = active.count()
        failed = Run.objects.filter(status="failed").count()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)
    summary.record(
        {
            f"api_{name}_{key}": figure[key]
            for name, figure in figures.items()
            for key in ("rps", "cpu_ms")
        }
    )
    report(
        stdout.write,
        figures,
        seconds=seconds,
        created=created,
        completed=done_in_window,
        drain=drain,
        left=left,
        failed=failed,
    )


def report(w, f: dict, *, seconds, created, completed, drain, left, failed) -> None:
    db = (
        "PostgreSQL" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "SQLite"
    )
    queue = "Redis" if settings.REDIS_URL else "SqliteHuey"
    bare = f["bare"]["rps"]
    w(
        f"\nREST API over HTTP (manage.py serve, {db} + {queue}, {os.cpu_count()} CPUs; wrk "
        f"-t{WRK_THREADS} -c{CONNECTIONS}, {seconds:g} s each: the GETs in {ROUNDS} alternating "
        f"rounds, medians)\n"
    )
    bare_cpu = f["bare"]["cpu_ms"]
    w(f"{'request':<46}{'req/s':>7}{'x bare':>7}{'p50':>9}{'cpu ms':>8}{'x bare':>7}  target")
    w("-" * 100)
    w(
        f"{'GET /api/_bench/bare (ninja, no auth)':<46}{bare:>7.0f}{1:>7.2f}{f['bare']['p50']:>9}"
        f"{bare_cpu:>8.2f}{1:>7.2f}"
    )

    def line(label, name, target_text, met):
        x, cpu = f[name]["rps"], f[name]["cpu_ms"]
        verdict = "met" if met(x) else "NOT met"
        w(
            f"{label:<46}{x:>7.0f}{x / bare:>7.2f}{f[name]['p50']:>9}{cpu:>8.2f}"
            f"{cpu / bare_cpu:>7.2f}  {target_text}: {verdict}"
        )

    half = f">= {TARGET_READ_RATIO} x bare"
    line("GET /api/runs/{id}", "run", half, lambda x: x >= TARGET_READ_RATIO * bare)
    line(
        "GET /api/runs/{id}/events?after_event_id=last",
        "poll",
        half,
        lambda x: x >= TARGET_READ_RATIO * bare,
    )
    line(
        "POST /api/runs (worker executing them)",
        "create",
        f">= {TARGET_CREATES_PER_SECOND:.0f} /s",
        lambda x: x >= TARGET_CREATES_PER_SECOND,
    )
    w("-" * 100)
    w(
        "cpu ms: CPU time of the gunicorn web processes per answered request (the database's "
        "and, for POST, the worker's are not in it); steadier than req/s on a busy machine."
    )
    for name, figure in f.items():
        if figure["bad"] or figure["errors"]:
            w(f"{name}: {figure['bad']} answers not 2xx; {figure['errors']}")
    w(
        f"create: {created} runs created, {completed} completed by the end of the window; the "
        f"rest done {drain:.1f} s later ({left} still active, {failed} failed)\n"
    )
