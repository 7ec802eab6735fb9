"""Runs tasks through a real fork server, without a worker or a database, and prints each one's
result as JSON: for tests that must run the fork server as another (unprivileged) user.

    python -m tests.engine.forkserver_driver '{"tasks_dir": ..., "mode": "required",
        "runs": [{"task_id": ..., "input": {...}, "limits": {...}, "network": true}]}'
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from runs.process.forkserver import ForkServer
from runs.process.sandbox import Policy


def read_result(fd: int) -> dict | None:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    for line in data.decode(errors="replace").splitlines():
        message = json.loads(line)
        if message.get("t") == "result":
            return message
    return None


def main(spec: dict) -> None:
    tasks = Path(spec["tasks_dir"])
    server = ForkServer(tasks, Policy(mode=spec.get("mode", "required"), definitions=[str(tasks)]))
    out = []
    try:
        for run in spec["runs"]:
            child = server.spawn(
                run["task_id"],
                path=str(tasks / f"{run['task_id']}.py"),
                limits=run.get("limits"),
                network=run.get("network", True),
                input=run.get("input") or {},
            )
            result = read_result(child.events_fd)
            stderr = b""
            while chunk := os.read(child.stderr_fd, 65536):
                stderr += chunk
            out.append(
                {"result": result, "exit": child.read_exit_code(), "stderr": stderr.decode()}
            )
            child.close()
    finally:
        server.stop()
    print(json.dumps({"uid": os.getuid(), "runs": out}))


def become(uid: int) -> None:
    """As root: a private mount namespace in which this interpreter is reachable by `uid` (it
    may live under /root), then `uid` for good: no capability left, like any ordinary user."""
    from runs.process import sandbox

    sandbox._check(sandbox._libc.unshare(sandbox.CLONE_NEWNS), "unshare")
    sandbox._mount(None, "/", None, sandbox.MS_REC | sandbox.MS_PRIVATE)
    covers, binds = sandbox._plan(Policy(definitions=[]))
    keep = [(p, os.open(p, os.O_PATH)) for p in binds]
    for cover in covers:
        sandbox._mount("tmpfs", cover, "tmpfs", sandbox.MS_NOSUID, "size=4k,mode=0755")
    for path, fd in keep:
        os.makedirs(path, exist_ok=True)
        sandbox._mount(f"/proc/self/fd/{fd}", path, None, sandbox.MS_BIND | sandbox.MS_REC)
        os.close(fd)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


if __name__ == "__main__":
    if sys.argv[1] == "--as":
        become(int(sys.argv[2]))
        os.environ.update(HOME="/tmp", TMPDIR="/tmp")
        if sys.argv[3] == "--":  # any script, e.g. scripts/bench_spawn.py
            os.execv(sys.executable, [sys.executable, *sys.argv[4:]])
        os.execv(
            sys.executable, [sys.executable, "-m", "tests.engine.forkserver_driver", *sys.argv[3:]]
        )
    main(json.loads(sys.argv[1]))
