"""Per-run cost of the fork server's sandbox: N no-op spawns, wall p50 and CPU per run.

    python scripts/bench_spawn.py [N] [--limits] [--no-cgroups] [--gap SECONDS]
                                                  (from the tree to measure)

CPU per run = the fork server's own CPU plus that of every process it reaped (the runs) and of
its children alive at the time (its preparer, the prepared sandboxes), from /proc/<pid>/stat
(utime+stime+cutime+cstime), divided by N. --limits gives each
run limits of its own, so it takes the slow path instead of the prepared sandbox. --gap waits
between runs (the way a client creates a run, waits for it, creates the next): a prepared sandbox
is then ready, as it is not when runs come back to back.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path.cwd()
sys.path.insert(0, str(ROOT))

from runs.process.forkserver import ForkServer  # noqa: E402
from runs.process.sandbox import Policy  # noqa: E402


def cpu_ms(pid: int) -> float:
    """CPU of `pid`, of what it reaped, and of its children alive now (the preparer, the
    prepared sandboxes), in milliseconds."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    total = sum(int(x) for x in fields[11:15]) * 1000 / os.sysconf("SC_CLK_TCK")
    try:
        children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    except OSError:
        children = []
    for child in children:
        try:
            total += cpu_ms(int(child))
        except OSError:
            pass  # reaped meanwhile: then counted above, or in the next reading
    return total


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 300
    limits = {"memory_mb": 512} if "--limits" in sys.argv else None
    tasks = ROOT / "tests" / "task_files"
    policy = Policy(mode="auto", definitions=[str(tasks)], cgroups="--no-cgroups" not in sys.argv)
    server = ForkServer(tasks, policy)
    server.start()
    path = str(tasks / "echo.py")

    gap = float(sys.argv[sys.argv.index("--gap") + 1]) if "--gap" in sys.argv else 0.0

    def one() -> float:
        start = time.perf_counter()
        child = server.spawn("echo", path=path, input={}, limits=limits, network=True)
        code = child.read_exit_code()
        child.close()
        assert code == 0, code
        return time.perf_counter() - start

    for _ in range(20):
        one()
    time.sleep(0.2)
    before = cpu_ms(server.proc.pid)
    start = time.perf_counter()
    walls = []
    for _ in range(n):
        walls.append(one())
        time.sleep(gap)
    elapsed = time.perf_counter() - start
    time.sleep(0.3)  # let the last runs be reaped
    after = cpu_ms(server.proc.pid)
    server.stop()
    print(
        json.dumps(
            {
                "p50_ms": round(statistics.median(walls) * 1000, 2),
                "p95_ms": round(sorted(walls)[int(0.95 * (len(walls) - 1))] * 1000, 2),
                "runs_per_s": round(n / elapsed, 1),
                "cpu_ms_per_run": round((after - before) / n, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
