"""The fork server on its own, without a worker or a database: prepared sandboxes, and how a
run's exit reaches the worker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runs.process import sandbox
from runs.process.forkserver import ForkServer
from runs.process.sandbox import Policy
from tests.workers import wait_for

pytestmark = pytest.mark.skipif(
    sandbox.probe(sandbox.Policy()) is not None, reason="this kernel cannot sandbox runs"
)

TASKS = {
    "noop.py": "from runs.definitions import task\n\n\n@task\ndef run(ctx):\n    return None\n",
    # What a run can see of the process it was handed: modules left by another task file, and
    # which descriptors are open.
    "inside.py": (
        "import os, sys\n\nfrom runs.definitions import task\n\n\n@task\ndef run(ctx):\n"
        "    return {'task_modules': sorted(n for n in sys.modules if n.startswith('studio_tasks.')),\n"
        "            'fds': sorted(int(n) for n in os.listdir('/proc/self/fd')),\n"
        "            'policy': os.sched_getscheduler(0),\n"
        "            'p1_policy': os.sched_getscheduler(1)}\n"
    ),
    "exits.py": (
        "import os\n\nfrom runs.definitions import task\n\n\n@task\ndef run(ctx):\n"
        "    os._exit(ctx.input['code'])\n"
    ),
    "sleeps.py": (
        "import time\n\nfrom runs.definitions import task\n\n\n@task\ndef run(ctx):\n"
        "    print('started', flush=True)\n    time.sleep(60)\n"
    ),
}


@pytest.fixture
def tasks(tmp_path) -> Path:
    # Not below /tmp, which a sandboxed run gets a fresh one of: below the project's var/.
    folder = Path(__file__).resolve().parents[2] / "var" / "tests" / tmp_path.name
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in TASKS.items():
        (folder / name).write_text(source)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def server(tasks):
    servers = []

    def start(prepared: int = 1) -> ForkServer:
        fs = ForkServer(tasks, Policy(mode="required", definitions=[str(tasks)], prepared=prepared))
        fs.start()
        servers.append(fs)
        return fs

    yield start
    for fs in servers:
        fs.stop()


def _children(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(p) for p in f.read().split()}
    except FileNotFoundError:
        return set()


def _sandboxes(fs: ForkServer) -> set[int]:
    """The fork server's prepared sandboxes: its children (P1s) whose task process is forked
    and waiting (the preparer is its child too, but has none of its own)."""
    return {pid for pid in _children(fs.proc.pid) if _children(pid)}


def _spawn(fs: ForkServer, tasks: Path, task_id: str, **input):
    return fs.spawn(task_id, path=str(tasks / f"{task_id}.py"), input=input, limits=None)


def _result(child) -> dict:
    data = b""
    while chunk := os.read(child.events_fd, 65536):
        data += chunk
    return next(
        message for message in map(json.loads, data.splitlines()) if message.get("t") == "result"
    )


def test_every_prepared_sandbox_serves_a_run(server, tasks):
    fs = server(prepared=4)
    prepared = wait_for(
        lambda: found if len(found := _sandboxes(fs)) == 4 else None,
        message="four prepared sandboxes",
    )
    served = set()
    for _ in range(4):
        child = _spawn(fs, tasks, "noop")
        assert _result(child)["ok"] is True
        assert child.read_exit_code() == 0
        served.add(child.pid)
        child.close()
    # Each run went to a sandbox set up before it arrived: none was lost to a mix-up of its
    # descriptors, which would have sent its run the slow way (a process of its own).
    assert served == prepared


def test_a_run_finds_nothing_of_the_rehearsal_in_its_process(server, tasks):
    fs = server(prepared=1)
    wait_for(lambda: len(_sandboxes(fs)) == 1, message="a prepared sandbox")
    child = _spawn(fs, tasks, "inside")
    output = _result(child)["output"]
    assert child.read_exit_code() == 0
    child.close()
    assert output["task_modules"] == [m for m in output["task_modules"] if "inside" in m]
    assert len(output["task_modules"]) == 1
    # stdin, stdout, stderr, the events and control pipes, and the listing's own descriptor.
    assert len(output["fds"]) == 6, output["fds"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can lift the idle priority again")
def test_a_sandbox_is_prepared_at_idle_priority_and_its_run_runs_at_the_normal_one(server, tasks):
    fs = server(prepared=1)
    (p1,) = wait_for(lambda: _sandboxes(fs), message="a prepared sandbox")
    task = wait_for(lambda: _children(p1), message="its task process")
    # Both wait for their run at idle priority: setting them up took no CPU a run wanted.
    assert os.sched_getscheduler(p1) == os.SCHED_IDLE
    assert os.sched_getscheduler(next(iter(task))) == os.SCHED_IDLE
    child = _spawn(fs, tasks, "inside")
    assert _result(child)["output"]["policy"] == os.SCHED_OTHER
    assert child.read_exit_code() == 0
    child.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can lift the idle priority again")
def test_runs_handed_to_sandboxes_still_being_prepared_run_at_the_normal_priority(server, tasks):
    # With every core busy, a sandbox prepared at idle priority gets no CPU: back to back, each
    # run comes to a sandbox that has barely begun (or not begun) to set itself up. Whatever
    # point its run finds it at, the run's processes must leave the idle priority, or they
    # starve for as long as anything else wants the CPU.
    fs = server(prepared=1)
    wait_for(lambda: len(_sandboxes(fs)) == 1, message="a prepared sandbox")
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range((os.cpu_count() or 1) + 1)
    ]
    try:
        seen = []
        for _ in range(30):
            child = _spawn(fs, tasks, "inside")
            output = _result(child)["output"]
            seen.append((output["p1_policy"], output["policy"]))
            assert child.read_exit_code() == 0
            child.close()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert seen == [(os.SCHED_OTHER, os.SCHED_OTHER)] * 30


@pytest.mark.parametrize("prepared", [1, 0], ids=["prepared", "slow-path"])
def test_the_exit_code_comes_from_the_runs_pid_1(server, tasks, prepared):
    fs = server(prepared=max(prepared, 1))
    limits = None if prepared else {"disk_mb": 50}  # limits of its own: the slow path
    clean = fs.spawn("noop", path=str(tasks / "noop.py"), input={}, limits=limits)
    assert clean.exit_fd is not None  # PID 1 says it to the worker directly
    assert clean.read_exit_code() == 0
    clean.close()
    failed = fs.spawn("exits", path=str(tasks / "exits.py"), input={"code": 7}, limits=limits)
    assert failed.read_exit_code() == 7
    assert failed.limit is None
    failed.close()


def test_a_killed_run_still_gets_its_exit_code(server, tasks):
    fs = server(prepared=1)
    child = _spawn(fs, tasks, "sleeps")
    wait_for(lambda: b"started" in os.read(child.stdout_fd, 100), message="the task to start")
    os.killpg(child.pid, signal.SIGKILL)  # PID 1 dies too: the fork server's report says it
    assert child.read_exit_code() == 128 + signal.SIGKILL
    child.close()


def test_a_prepared_sandbox_that_dies_before_its_run_is_replaced(server, tasks):
    fs = server(prepared=2)
    first = wait_for(lambda: found if len(found := _sandboxes(fs)) == 2 else None)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: len(found := _sandboxes(fs)) == 2 and victim not in found,
        message="a new sandbox in place of the killed one",
    )
    for _ in range(3):
        child = _spawn(fs, tasks, "noop")
        assert _result(child)["ok"] is True
        assert child.read_exit_code() == 0
        child.close()


def test_without_its_preparer_the_fork_server_prepares_sandboxes_itself(server, tasks):
    fs = server(prepared=2)
    sandboxes = wait_for(lambda: found if len(found := _sandboxes(fs)) == 2 else None)
    (preparer,) = _children(fs.proc.pid) - sandboxes
    os.kill(preparer, signal.SIGKILL)
    wait_for(lambda: preparer not in _children(fs.proc.pid), message="the preparer reaped")
    served = set()
    for _ in range(4):  # the two prepared before, then two the fork server prepared itself
        child = _spawn(fs, tasks, "noop")
        assert _result(child)["ok"] is True
        assert child.read_exit_code() == 0
        served.add(child.pid)
        child.close()
        wait_for(lambda: len(_sandboxes(fs)) == 2, message="the sandboxes prepared again")
    assert sandboxes <= served
