"""Stopping runs for real: cancel (pending, running, waiting, finished) and timeouts."""

from __future__ import annotations

import os

import pytest

from runs import service
from tests.workers import wait_for

from .conftest import event_types, wait_status

pytestmark = pytest.mark.worker


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"  # a zombie is dead, just not yet reaped
    except FileNotFoundError:
        return False


def spawned_pid(run) -> int:
    """The host pid of the `sleep` the stubborn task spawned (found by its command line: inside
    a sandbox, the pid the task printed is one of its own PID namespace)."""

    def find():
        line = run.events.filter(event_type="log", payload__line__startswith="spawned").first()
        return line and host_pids(["sleep", line.payload["line"].split()[-1]])

    return wait_for(find, 20, message="the task to spawn its child")[0]


def host_pids(cmdline: list[str]) -> list[int]:
    """Live processes on this host running exactly `cmdline`."""
    wanted = ("\0".join(cmdline) + "\0").encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read() == wanted and alive(int(pid)):
                    found.append(int(pid))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def test_cancelling_a_pending_run_ends_it_at_once_and_it_never_starts(create):
    run = create("sleeper")
    cancelled, run = service.cancel_run(run)
    assert cancelled is True
    assert run.status == "cancelled"
    assert run.completed_at is not None
    assert event_types(run) == ["run.created", "run.cancelled"]


def test_a_cancelled_pending_run_is_not_started_by_a_worker(start_test_worker, create):
    run = create("sleeper", input={"seconds": 0})
    service.cancel_run(run)
    start_test_worker()
    marker = create("sleeper", input={"seconds": 0})  # processed after the cancelled one
    wait_status(marker, "completed")
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert "run.started" not in event_types(run)


def test_cancelling_a_finished_run_changes_nothing(create, start_test_worker):
    start_test_worker()
    run = wait_status(create("sleeper", input={"seconds": 0}), "completed")
    cancelled, again = service.cancel_run(run)
    assert cancelled is False
    assert again.status == "completed"
    assert event_types(again)[-1] == "run.completed"


def test_a_stubborn_run_and_everything_it_spawned_is_killed_after_the_grace_period(
    start_test_worker, create
):
    start_test_worker(STUDIO_CANCEL_GRACE_SECONDS=1)
    run = create("stubborn")
    wait_status(run, "running")
    grandchild = spawned_pid(run)
    assert alive(grandchild)

    cancelled, run = service.cancel_run(run)
    assert cancelled is True
    assert run.status == "running" and run.cancelling  # until the worker confirms

    wait_status(run, "cancelled")
    assert run.error["code"] == "cancelled"
    assert "grace period" in run.events.get(event_type="run.cancelled").payload["reason"]
    assert "run.cancelling" in event_types(run)
    wait_for(lambda: not alive(grandchild), 5, message=f"sleep 600 (pid {grandchild}) to be gone")


def test_a_cooperative_run_sees_ctx_cancelled_and_stops_early(worker, project, settings):
    settings.STUDIO_TASKS_DIR = worker.env["STUDIO_TASKS_DIR"]  # the shipped tasks
    run = service.create_run(
        project, target="task:long-running", input={"steps": 600, "delay_seconds": 0.05}
    ).run
    wait_for(lambda: run.events.filter(event_type="progress").exists(), 20, message="progress")
    service.cancel_run(run)
    wait_status(run, "cancelled")
    assert run.output["stopped_early"] is True
    assert "grace period" not in run.error["message"]


def test_a_run_over_its_timeout_is_killed_and_fails_with_code_timeout(start_test_worker, create):
    start_test_worker()
    run = create("stubborn", timeout_seconds=1)
    grandchild = spawned_pid(run)
    wait_status(run, "failed")
    assert run.error["code"] == "timeout"
    assert "timeout of 1s" in run.error["message"]
    assert run.exit_code == 137
    wait_for(lambda: not alive(grandchild), 5, message="the spawned process to be gone")


def test_cancelling_a_run_waiting_to_retry_cancels_it(start_test_worker, create):
    start_test_worker(STUDIO_RETRY_BASE_SECONDS=60)
    run = create("flaky", backoff_limit=2)
    wait_status(run, "waiting")
    cancelled, run = service.cancel_run(run)
    assert cancelled is True
    assert run.status == "cancelled"
    assert run.resume_at is None


def test_nothing_of_a_cancelled_run_remains_in_its_process_group(start_test_worker, create):
    start_test_worker(STUDIO_CANCEL_GRACE_SECONDS=0.5)
    run = create("stubborn")
    with open(f"/proc/{spawned_pid(run)}/stat") as f:
        task_pid = int(f.read().rsplit(")", 1)[1].split()[2])  # its process group
    assert in_group(task_pid)  # the task and its `sleep 600`
    service.cancel_run(run)
    wait_status(run, "cancelled")
    wait_for(lambda: not in_group(task_pid), 5, message=f"process group {task_pid} to be empty")


def in_group(pgid: int) -> list[int]:
    """Live processes whose process group is `pgid` (zombies count as gone)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(pid))
    return found
