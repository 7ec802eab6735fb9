"""The workflows section of `manage.py bench`: step hand-off latency over 20-step chains of
no-op tasks, and a 200-item map beside 200 plain runs created at once (PostgreSQL + Redis is what
the targets are set for)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.core.management.base import CommandError

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
WORKFLOW_FILES = {"chain20.py": CHAIN_WORKFLOW, "map200.py": MAP_WORKFLOW}


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _tree_cpu() -> float:
    """CPU seconds (user + system, with reaped children) of the worker processes this benchmark
    started: every descendant of this process. Noise on a shared machine barely moves it."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    mine, total, grew = {os.getpid()}, 0, True
    while grew:
        grew = False
        for pid, (ppid, _) in stats.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                grew = True
    for pid in mine - {os.getpid()}:
        total += stats[pid][1]
    return total / os.sysconf("SC_CLK_TCK")


def measure(chains: int = 3) -> dict:
    from runs import service
    from runs.models import Project, Run, WorkflowStep

    project, _ = Project.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
    active = ["pending", "running", "waiting"]

    def wait_done(pk: str, timeout: float) -> Run:
        deadline = time.monotonic() + timeout
        while Run.objects.filter(pk=pk, status__in=active).exists():
            if time.monotonic() > deadline:
                raise CommandError(f"workflow run {pk} did not finish within {timeout}s")
            time.sleep(0.02)
        return Run.objects.get(pk=pk)

    proc = Path("/proc").is_dir()
    handoffs: list[float] = []
    to_created: list[float] = []  # the part before the advance built step N+1's child
    cpu0 = _tree_cpu() if proc else float("nan")
    for _ in range(chains):
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
                "created_at", "started_at", "completed_at"
            )
        }
        for i in range(19):
            done = times[children[f"s{i}"]].completed_at
            created = times[children[f"s{i + 1}"]].created_at
            started = times[children[f"s{i + 1}"]].started_at
            handoffs.append((started - done).total_seconds() * 1000)
            to_created.append((created - done).total_seconds() * 1000)

    chain_cpu = (_tree_cpu() - cpu0) if proc else float("nan")
    t0 = time.time()
    cpu0 = _tree_cpu() if proc else float("nan")
    ids = [service.create_run(project, target="task:noop").run.pk for _ in range(200)]
    deadline = time.monotonic() + 300
    while Run.objects.filter(pk__in=ids, status__in=active).exists():
        if time.monotonic() > deadline:
            raise CommandError("200 plain runs did not finish within 300s")
        time.sleep(0.02)
    plain = time.time() - t0
    plain_cpu = (_tree_cpu() - cpu0) if proc else float("nan")
    t0 = time.time()
    cpu0 = _tree_cpu() if proc else float("nan")
    mapped = wait_done(service.create_run(project, target="workflow:map200").run.pk, 300)
    map_wall = time.time() - t0
    map_cpu = (_tree_cpu() - cpu0) if proc else float("nan")
    return {
        "chain_cpu_per_step_ms": chain_cpu * 1000 / (chains * 20),
        "plain_200_cpu": plain_cpu,
        "map_200_cpu": map_cpu,
        "handoff_p50": _pct(handoffs, 50),
        "handoff_p95": _pct(handoffs, 95),
        "handoffs": len(handoffs),
        "to_created_p50": _pct(to_created, 50),
        "plain_200": plain,
        "map_200": map_wall,
        "map_status": mapped.status,
    }


def report(w, wf: dict) -> None:
    w("Workflows")
    w("-" * 76)
    w(
        f"{'step hand-off p50 (ms, target < 15)':<40}{wf['handoff_p50']:>12.2f}"
        f"   over {wf['handoffs']} hand-offs of 20-step no-op chains"
    )
    w(f"{'step hand-off p95 (ms)':<40}{wf['handoff_p95']:>12.2f}")
    w(
        f"{'  of which until N+1 is built (p50)':<40}{wf['to_created_p50']:>12.2f}"
        "   (child ended -> its parent's advance creates the next)"
    )
    w(f"{'200 plain no-op runs, wall time (s)':<40}{wf['plain_200']:>12.2f}")
    w(
        f"{'200-item map, wall time (s)':<40}{wf['map_200']:>12.2f}"
        f"{wf['map_200'] / wf['plain_200']:>11.2f}x  (target <= 1.3x; {wf['map_status']})"
    )
    w(
        f"{'worker CPU per chain step (ms)':<40}{wf['chain_cpu_per_step_ms']:>12.1f}"
        "   the workers' processes, child run and hand-off"
    )
    w(
        f"{'worker CPU: 200 plain / 200-item map (s)':<40}{wf['plain_200_cpu']:>12.2f}"
        f"{wf['map_200_cpu']:>8.2f}{wf['map_200_cpu'] / wf['plain_200_cpu']:>7.2f}x"
    )
    w(
        "hand-off: step N's child completed -> step N+1's child started. Worker CPU: user + "
        "system\nseconds of the worker processes (noise on a shared machine barely moves it).\n"
    )
