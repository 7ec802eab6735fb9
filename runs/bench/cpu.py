"""Where a run's CPU goes: /proc accounting of every process taking part, per run.

Read before and after the throughput phase of the engine bench (runs/bench/engine.py): the
process creating the runs (this one, which stands in for the web process: it goes through the
same `service.create_run`), the worker (its Huey threads and supervisors), the fork server with
everything it reaped (the preparer, and each run's P1 with its task process: a process's CPU
is added to its parent's when it is reaped), the database server's processes and Redis.
Divided by the runs of the phase: milliseconds of CPU per run, which other work on the machine
barely moves (unlike rates), as long as that work is not in the same processes: the database's
processes serve everyone, so judge its figure on a machine otherwise quiet.
"""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PARTS = ("creating", "worker", "fork server", "run processes", "database", "redis")


def _stat(pid: int) -> tuple[float, float]:
    """(own CPU, reaped children's CPU) of `pid` in milliseconds; (0, 0) if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0, 0.0
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) * 1000 / TICK, (cutime + cstime) * 1000 / TICK


def _children(pid: int) -> list[int]:
    """The children of every thread of `pid` (the fork server is started from a thread)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def snapshot(worker_pid: int) -> dict[str, float] | None:
    """CPU milliseconds so far of each part (see PARTS); None where /proc cannot say."""
    if not Path("/proc/self/stat").exists():
        return None
    parts = dict.fromkeys(PARTS, 0.0)
    parts["creating"] = _stat(os.getpid())[0]
    parts["worker"] = _stat(worker_pid)[0]
    for child in _children(worker_pid):
        if "runs.process.forkserver" not in _command(child):
            continue
        own, reaped = _stat(child)
        parts["fork server"] += own
        parts["run processes"] += reaped
        for kid in _children(child):  # the preparer, and the runs not reaped yet
            kid_own, kid_reaped = _stat(kid)
            parts["run processes"] += kid_own + kid_reaped
            # A P1's task process until P1 reaps it: a reused one (reuse_process) lives on.
            for task in _children(kid):
                parts["run processes"] += sum(_stat(task))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        comm = _comm(int(entry.name))
        if comm == "postgres" or comm.startswith("postgres:"):
            parts["database"] += _stat(int(entry.name))[0]
        elif comm == "redis-server":
            parts["redis"] += _stat(int(entry.name))[0]
    return parts


def per_run(before: dict | None, after: dict | None, runs: int) -> dict[str, float]:
    """The CPU per run of each part between two snapshots, as `cpu_<part>` figures (ms)."""
    if not before or not after or not runs:
        return {}
    figures = {f"cpu_{k.replace(' ', '_')}": (after[k] - before[k]) / runs for k in PARTS}
    figures["cpu_total"] = sum(figures.values())
    return figures


def report(write, figures: dict[str, float], prefix: str = "") -> None:
    """The figures of `per_run` (their keys after `prefix`: "reuse_" for reuse_process runs)."""
    if f"{prefix}cpu_total" not in figures:
        return
    which = ", reuse_process" if prefix == "reuse_" else ""
    write(f"CPU per run in the throughput phase{which} (ms, /proc accounting):")
    for part in PARTS:
        key = f"{prefix}cpu_" + part.replace(" ", "_")
        write(f"  {part:<16}{figures[key]:>8.2f}")
    write(f"  {'total':<16}{figures[f'{prefix}cpu_total']:>8.2f}")
