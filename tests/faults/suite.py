"""The fault-injection suite: a mixed workload through the API while faults are injected at
random (seeded) moments, then the invariants, printed as a table.

    python -m tests.faults            # the long run: >= 1,000 runs
    python -m tests.faults --short    # at most 3 minutes (make test runs it)
    python -m tests.faults --seed 7   # replay a schedule of faults
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from .cluster import HEARTBEAT_SECONDS, HOST, LOST_SECONDS, Services, Studio, Unavailable, alive

TERMINAL = {"completed", "failed", "cancelled"}
TERMINAL_EVENTS = ("run.completed", "run.failed", "run.cancelled")


@dataclass
class Mode:
    runs: int
    duration: float  # seconds over which runs are created and faults injected
    faults: int
    settle_within: float


SHORT = Mode(runs=240, duration=55, faults=6, settle_within=60)
LONG = Mode(runs=1200, duration=300, faults=24, settle_within=180)


# --- the API client that keeps score ---------------------------------------------------------------


@dataclass
class ApiLog:
    statuses: Counter = field(default_factory=Counter)
    five_hundreds: list = field(default_factory=list)
    unavailable_without_retry_after: int = 0
    connection_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Api:
    def __init__(self, base: str, token: str, log: ApiLog):
        assert base.startswith(f"http://{HOST}:"), "the suite talks to 127.0.0.1 only"
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        self.log = log

    def call(self, method: str, path: str, **kwargs) -> httpx.Response | None:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError:
            with self.log.lock:
                self.log.connection_errors += 1
            return None
        with self.log.lock:
            self.log.statuses[response.status_code] += 1
            if response.status_code >= 500 and response.status_code != 503:
                self.log.five_hundreds.append((method, path, response.text[:300]))
            if response.status_code == 503 and not response.headers.get("Retry-After"):
                self.log.unavailable_without_retry_after += 1
        return response

    def until_answered(self, method: str, path: str, deadline: float, **kwargs):
        """Retry while the service is away (503, connection refused), as a client should."""
        while time.monotonic() < deadline:
            response = self.call(method, path, **kwargs)
            if response is not None and response.status_code != 503:
                return response
            delay = 0.5
            if response is not None:
                delay = min(2.0, float(response.headers.get("Retry-After", 1)))
            time.sleep(delay)
        return None


# --- the workload --------------------------------------------------------------------------------

KINDS = [  # (name, weight, request)
    ("noop", 30, lambda r: {"target": "task:noop"}),
    ("chatty", 15, lambda r: {"target": "task:chatty", "input": {"lines": r.randint(50, 400)}}),
    ("slow", 20, lambda r: {"target": "task:slow", "input": {"seconds": r.uniform(0.5, 4)}}),
    ("flaky", 10, lambda r: {"target": "task:flaky"}),
    ("cancel", 15, lambda r: {"target": "task:slow", "input": {"seconds": 30}}),
    ("timeout", 10, lambda r: {"target": "task:stuck", "timeout_seconds": 1}),
    ("workflow", 5, lambda r: {"workflow_id": "fan"}),
]


@dataclass
class Workload:
    accepted: dict = field(default_factory=dict)  # run id -> kind
    refused: int = 0
    to_cancel: list = field(default_factory=list)  # (when, run id)
    followed: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_runs(api: Api, studio: Studio, mode: Mode, rng: random.Random, work: Workload):
    weights = [w for _, w, _ in KINDS]
    start = time.monotonic()
    for i in range(mode.runs):
        at = start + mode.duration * i / mode.runs
        time.sleep(max(0.0, at - time.monotonic()))
        name, _, request = rng.choices(KINDS, weights)[0]
        body = {
            "kind": "workflow" if name == "workflow" else "task",
            "owner": {"kind": "project", "id": studio.project_id},
            # The same public_id on every retry: a create answered late is not made twice.
            "public_id": f"faults-{uuid.UUID(int=rng.getrandbits(128))}",
            "request": request(rng) if name == "workflow" else {"name": name, **request(rng)},
        }
        response = api.until_answered("POST", "/api/runs", time.monotonic() + 60, json=body)
        if response is None or response.status_code != 202:
            work.refused += 1
            continue
        run_id = response.json()["run"]["run_id"]
        with work.lock:
            work.accepted[run_id] = name
            if name == "cancel":
                work.to_cancel.append((time.monotonic() + rng.uniform(0.3, 3), run_id))
            if i % 5 == 0:
                work.followed.append(run_id)


def add_related_runs(studio: Studio, work: Workload) -> None:
    """Runs the workload did not create itself join every check: the schedule's runs and the
    workflows' child runs."""
    with psycopg.connect(studio.services.admin_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id, CASE WHEN schedule_id IS NOT NULL THEN 'scheduled' ELSE 'child' END "
            "FROM runs_run WHERE schedule_id IS NOT NULL OR root_run_id = ANY(%s)",
            [[r for r, kind in work.accepted.items() if kind == "workflow"]],
        ).fetchall()
    with work.lock:
        for run_id, kind in rows:
            work.accepted.setdefault(run_id, kind)


def cancel_runs(api: Api, work: Workload, stop: threading.Event):
    while not stop.is_set() or work.to_cancel:
        now = time.monotonic()
        with work.lock:
            due = [run_id for when, run_id in work.to_cancel if when <= now]
            work.to_cancel = [(w, r) for w, r in work.to_cancel if w > now]
        for run_id in due:
            api.until_answered("POST", f"/api/runs/{run_id}/cancel", now + 60)
        time.sleep(0.1)


@dataclass
class Poller:
    """Follows runs' events with after_event_id, as a client would, and notes any event seen
    twice or out of order."""

    seen: dict = field(default_factory=lambda: defaultdict(list))
    duplicates: int = 0
    out_of_order: int = 0
    done: set = field(default_factory=set)

    def run(self, api: Api, work: Workload, stop: threading.Event):
        while not (stop.is_set() and self.done >= set(work.followed)):
            with work.lock:
                followed = [r for r in work.followed if r not in self.done]
            for run_id in followed:
                self.poll(api, run_id)
            time.sleep(0.3)

    def poll(self, api: Api, run_id: str) -> None:
        ids = self.seen[run_id]
        params = {"limit": 500}
        if ids:
            params["after_event_id"] = ids[-1]
        response = api.call("GET", f"/api/runs/{run_id}/events", params=params)
        if response is None or response.status_code != 200:
            return
        for event in response.json()["data"]:
            if event["event_id"] in ids:
                self.duplicates += 1
                continue
            if ids and event["event_id"] < ids[-1]:
                self.out_of_order += 1
            ids.append(event["event_id"])
            if event["event_type"] in TERMINAL_EVENTS:
                self.done.add(run_id)


# --- the faults ----------------------------------------------------------------------------------


@dataclass
class Faults:
    injected: Counter = field(default_factory=Counter)
    pauses: list = field(default_factory=list)  # (worker index, stopped at, continued at)
    db_away: list = field(default_factory=list)  # (from, to)
    last_fault_end: float = 0.0
    late_processes: int = 0
    notes: list = field(default_factory=list)


FAULT_KINDS = [
    "kill_worker_tree",
    "kill_fork_server",
    "pause_worker",
    "restart_redis",
    "restart_postgres",
    "drop_connections",
]


def inject(studio: Studio, services: Services, mode: Mode, rng: random.Random, faults: Faults):
    # Every kind at least once, the rest at random; at random moments after a warm-up.
    kinds = FAULT_KINDS + [rng.choice(FAULT_KINDS) for _ in range(mode.faults - len(FAULT_KINDS))]
    rng.shuffle(kinds)
    start = time.monotonic() + 5
    span = mode.duration - 5
    moments = sorted(rng.uniform(0, span) for _ in kinds)
    for kind, moment in zip(kinds, moments, strict=True):
        time.sleep(max(0.0, start + moment - time.monotonic()))
        index = rng.randrange(3)
        began = time.time()
        try:
            if kind == "kill_worker_tree":
                studio.kill_worker_tree(index)
                time.sleep(rng.uniform(0.5, 2))
                studio.start_worker(index)
            elif kind == "kill_fork_server":
                pid = studio.fork_server_of(index)
                if pid is None:
                    continue
                signal_pid(pid, signal.SIGKILL)
            elif kind == "pause_worker":
                pause_worker(studio, index, faults)
            elif kind == "restart_redis":
                services.restart_redis()
            elif kind == "restart_postgres":
                services.restart_postgres()
                faults.db_away.append((began, time.time()))
            elif kind == "drop_connections":
                services.drop_connections()
        except Exception as exc:  # a fault that could not be injected is reported, not hidden
            faults.notes.append(f"{kind}: could not inject: {exc}")
            continue
        faults.injected[kind] += 1
        faults.last_fault_end = time.time()


def signal_pid(pid: int, sig: int) -> None:
    try:
        import os

        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def pause_worker(studio: Studio, index: int, faults: Faults) -> None:
    """SIGSTOP the worker alone (its runs' processes go on) beyond the lost window, SIGCONT it,
    and check that, one heartbeat later, none of its run processes still runs a run it lost."""
    proc = studio.workers[index]
    stopped = time.time()
    signal_pid(proc.pid, signal.SIGSTOP)
    time.sleep(LOST_SECONDS + 3)
    signal_pid(proc.pid, signal.SIGCONT)
    woke = time.time()
    faults.pauses.append((index, stopped, woke))
    time.sleep(HEARTBEAT_SECONDS + 0.5)
    faults.late_processes += late_run_processes(studio, proc.pid)


def late_run_processes(studio: Studio, worker_pid: int) -> int:
    """Run processes under this worker whose run is no longer this worker's attempt."""
    from .cluster import tree

    starts = ledger_starts(studio.ledger)
    late = 0
    with psycopg.connect(studio.services.admin_url(), autocommit=True) as conn:
        for pid in tree(worker_pid)[1:]:
            key = starts.get(pid)
            if key is None or not alive(pid):
                continue
            run_id, attempt = key
            row = conn.execute(
                "SELECT status, attempt, worker FROM runs_run WHERE id = %s", [run_id]
            ).fetchone()
            if row is None or row[0] != "running" or row[1] != attempt:
                late += 1
    return late


def ledger_starts(path: Path) -> dict[int, tuple[str, int]]:
    starts = {}
    for entry in read_ledger(path):
        if entry["what"] == "start":
            starts[entry["pid"]] = (entry["run"], entry["attempt"])
    return starts


def read_ledger(path: Path) -> list[dict]:
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pass
    return entries


# --- the invariants ------------------------------------------------------------------------------


def settle(studio: Studio, work: Workload, within: float) -> tuple[int, float]:
    """Wait until every accepted run is terminal; (runs still not terminal, seconds waited)."""
    ids = list(work.accepted)
    began = time.monotonic()
    deadline = began + within
    remaining = len(ids)
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(studio.services.admin_url(), autocommit=True) as conn:
                remaining = conn.execute(
                    "SELECT count(*) FROM runs_run WHERE id = ANY(%s) "
                    "AND status NOT IN ('completed', 'failed', 'cancelled')",
                    [ids],
                ).fetchone()[0]
        except psycopg.Error:
            remaining = len(ids)
        if remaining == 0:
            break
        time.sleep(0.5)
    return remaining, time.monotonic() - began


def check(studio: Studio, work: Workload, poller: Poller, faults: Faults, api_log: ApiLog):
    ids = list(work.accepted)
    ledger = read_ledger(studio.ledger)
    with psycopg.connect(studio.services.admin_url(), autocommit=True) as conn:
        rows = dict(
            conn.execute("SELECT id, status FROM runs_run WHERE id = ANY(%s)", [ids]).fetchall()
        )
        terminal_events = Counter(
            dict(
                conn.execute(
                    "SELECT run_id, count(*) FROM runs_runevent WHERE run_id = ANY(%s) "
                    "AND event_type = ANY(%s) GROUP BY run_id",
                    [ids, list(TERMINAL_EVENTS)],
                ).fetchall()
            )
        )
        chatty = [r for r, kind in work.accepted.items() if kind == "chatty"]
        log_lines = conn.execute(
            "SELECT run_id, payload->>'line' FROM runs_runevent WHERE run_id = ANY(%s) "
            "AND event_type = 'log'",
            [chatty],
        ).fetchall()
        stored_events = defaultdict(list)
        for run_id, event_id in conn.execute(
            "SELECT run_id, id FROM runs_runevent WHERE run_id = ANY(%s) ORDER BY id",
            [work.followed],
        ).fetchall():
            stored_events[run_id].append(event_id)
        outcomes = Counter(
            f"{status}" + (f" ({code})" if code and status != "completed" else "")
            for status, code in conn.execute(
                "SELECT status, error->>'code' FROM runs_run WHERE id = ANY(%s)", [ids]
            ).fetchall()
        )
        # A task's own code fails only in the flaky kind (its first attempt); anywhere else a
        # task_error means the workload itself broke (say, the ledger was not writable), and
        # then every other number here would hold for nothing.
        broken_workload = conn.execute(
            "SELECT count(*) FROM runs_run WHERE id = ANY(%s) AND error->>'code' = 'task_error'",
            [[r for r, kind in work.accepted.items() if kind != "flaky"]],
        ).fetchone()[0]
        retried = conn.execute(
            "SELECT count(DISTINCT run_id) FROM runs_runevent WHERE run_id = ANY(%s) "
            "AND event_type = 'run.retrying' AND payload->'error'->>'code' IN "
            "('worker_lost', 'process_died')",
            [ids],
        ).fetchone()[0]
        last_settled = conn.execute(
            "SELECT extract(epoch FROM max(completed_at)) FROM runs_run WHERE id = ANY(%s)", [ids]
        ).fetchone()[0]

    lost = sum(1 for r in ids if r not in rows)
    stuck = sum(1 for r in ids if rows.get(r) not in TERMINAL)
    not_one_terminal_event = sum(1 for r in ids if terminal_events.get(r, 0) != 1)
    stored_twice = sum(n - 1 for n in Counter(log_lines).values() if n > 1)

    # Two attempts at once: the same (run, attempt) started twice, or attempt n+1 starting
    # while attempt n was still seen alive (beyond a pause's allowance of one heartbeat).
    starts = Counter((e["run"], e["attempt"]) for e in ledger if e["what"] == "start")
    same_attempt_twice = sum(n - 1 for n in starts.values() if n > 1)
    spans: dict = defaultdict(lambda: [float("inf"), 0.0])
    for entry in ledger:
        span = spans[(entry["run"], entry["attempt"])]
        span[0] = min(span[0], entry["t"])
        span[1] = max(span[1], entry["t"])
    overlaps = 0
    worst_overlap = 0.0
    for (run_id, attempt), (first, _) in spans.items():
        earlier = spans.get((run_id, attempt - 1))
        if earlier is None or earlier[1] <= first:
            continue
        overlap = earlier[1] - first
        allowed = any(
            woke <= earlier[1] <= woke + HEARTBEAT_SECONDS + 0.5 for _, _, woke in faults.pauses
        )
        worst_overlap = max(worst_overlap, overlap)
        if not allowed:
            overlaps += 1

    missed = 0
    for run_id in work.followed:
        seen = set(poller.seen.get(run_id, []))
        last = max(seen) if seen else 0
        missed += sum(
            1
            for event_id in stored_events.get(run_id, [])
            if event_id <= last and event_id not in seen
        )

    orphans = sum(1 for pid in {e["pid"] for e in ledger} if alive(pid) and _ours(pid, studio))

    return {
        "lost": lost,
        "duplicated": same_attempt_twice + overlaps,
        "stuck": stuck,
        "orphans": orphans,
        "runs without exactly one terminal event": not_one_terminal_event,
        "log lines stored twice in an attempt": stored_twice,
        "events missed by the after_event_id poller": missed,
        "events seen twice by the poller": poller.duplicates + poller.out_of_order,
        "late run processes after a paused worker woke": faults.late_processes,
        "API 5xx other than 503": len(api_log.five_hundreds),
        "API 503 without Retry-After": api_log.unavailable_without_retry_after,
        "runs whose own code failed outside the flaky kind": broken_workload,
        # An empty ledger would make the overlap and orphan counts hold for nothing.
        "runs checked without a ledger (it stayed empty)": 0 if ledger else len(ids),
        "_worst_overlap": worst_overlap,
        "_outcomes": dict(sorted(outcomes.items())),
        "_retried_after_fault": retried,
        "_last_settled": float(last_settled or 0),
    }


def _ours(pid: int, studio: Studio) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return str(studio.ledger).encode() in f.read()
    except OSError:
        return False


def table(rows: list[tuple[str, object]]) -> str:
    width = max(len(name) for name, _ in rows)
    lines = [f"| {'check'.ljust(width)} | result |", f"|{'-' * (width + 2)}|--------|"]
    lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults")
    parser.add_argument("--short", action="store_true", help="at most 3 minutes")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    mode = SHORT if args.short else LONG
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="studio-faults-"))
    services = Services(tmp)
    studio = Studio(tmp, services)
    began = time.monotonic()
    try:
        try:
            services.start()
        except Unavailable as exc:
            print(f"*** fault suite SKIPPED: {exc} ***", file=sys.stderr)
            return 0 if not _ci() else 1
        studio.setup()
        studio.start_web()
        for index in range(3):
            studio.start_worker(index)
        print(
            f"fault suite ({'short' if args.short else 'long'}, seed {args.seed}): "
            f"PostgreSQL :{services.pg_port}, Redis :{services.redis_port}, "
            f"web :{studio.web_port}, 3 workers; {mode.runs} runs over {mode.duration:.0f}s",
            flush=True,
        )
        api_log = ApiLog()
        api = Api(f"http://{HOST}:{studio.web_port}", studio.token, api_log)
        work, poller, faults = Workload(), Poller(), Faults()
        stop = threading.Event()
        threads = [
            threading.Thread(target=cancel_runs, args=(api, work, stop), daemon=True),
            threading.Thread(target=poller.run, args=(api, work, stop), daemon=True),
        ]
        for thread in threads:
            thread.start()
        injector = threading.Thread(
            target=inject, args=(studio, services, mode, rng, faults), daemon=True
        )
        injector.start()
        # Scheduled runs too: one schedule fires every 2 s while the faults go on.
        api.until_answered(
            "POST",
            "/api/projects/faults/schedules",
            time.monotonic() + 60,
            json={"id": "tick", "target": "task:noop", "interval_seconds": 2},
        )
        create_runs(api, studio, mode, random.Random(rng.getrandbits(64)), work)
        injector.join()
        api.until_answered(
            "POST", "/api/projects/faults/schedules/tick/pause", time.monotonic() + 60, json={}
        )
        add_related_runs(studio, work)
        stop.set()
        remaining, waited = settle(studio, work, mode.settle_within)
        for thread in threads:
            thread.join(30)
        time.sleep(HEARTBEAT_SECONDS)  # let killed processes be reaped before counting orphans
        results = check(studio, work, poller, faults, api_log)
        settle_time = max(0.0, results.pop("_last_settled") - faults.last_fault_end)
        worst = results.pop("_worst_overlap")
        outcomes = results.pop("_outcomes")
        retried = results.pop("_retried_after_fault")
        rows = [
            ("runs accepted by the API, and how they ended:", len(work.accepted)),
            *[(f"  {outcome}", n) for outcome, n in outcomes.items()],
            ("runs retried after losing their worker or process", retried),
            ("faults injected", sum(faults.injected.values())),
            *[(f"  {kind}", faults.injected.get(kind, 0)) for kind in FAULT_KINDS],
            *results.items(),
            ("API answers", dict(sorted(api_log.statuses.items()))),
            ("API connection errors", api_log.connection_errors),
            ("worst overlap of two attempts, s (allowed across a pause)", f"{worst:.2f}"),
            ("time from the last fault to the last run settled, s", f"{settle_time:.1f}"),
            ("whole suite, s", f"{time.monotonic() - began:.0f}"),
        ]
        print(table(rows))
        for note in faults.notes:
            print("note:", note)
        for method, path, body in api_log.five_hundreds[:5]:
            print("5xx:", method, path, body)
        failed = [name for name, value in results.items() if value]
        if remaining:
            failed.append(f"{remaining} run(s) not settled within {mode.settle_within}s")
        if failed:
            print("FAILED:", ", ".join(failed), f"(logs in {tmp})")
            args.keep = True
            return 1
        print("all invariants held")
        return 0
    finally:
        studio.stop()
        services.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _ci() -> bool:
    import os

    return os.environ.get("CI") == "true"
