"""A cgroup per run, against a real worker: memory counted across the run's processes,
processes capped by pids.max, no RLIMIT_AS in the way, and the cgroup gone after the run."""

from __future__ import annotations

import os

import pytest

from runs.process import cgroups, sandbox
from tests.workers import wait_for

from .conftest import wait_status


def _offered() -> str | None:
    """Why this machine gives Studio no per-run cgroup with both controllers, or None."""
    mounts, own = cgroups._mounts(), cgroups._own_cgroups()
    for detect in (cgroups._v2, cgroups._v1):
        found, why = detect(mounts, own)
        if found is not None:
            cgroups._remove_parents(found)
            if set(found.parents) == set(cgroups.CONTROLLERS):
                return None
            why = f"only {', '.join(found.parents)}"
    return why or "no cgroups"


pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(
        sandbox.probe(sandbox.Policy()) is not None, reason="this kernel cannot sandbox runs"
    ),
    pytest.mark.skipif(_offered() is not None, reason=f"no per-run cgroups here: {_offered()}"),
]


@pytest.fixture
def worker(start_test_worker):
    worker = start_test_worker(STUDIO_SANDBOX="required")
    assert "per run for memory (the run's total) and processes" in worker.log, worker.log
    return worker


def _directories(lines: list[str]) -> dict[str, str]:
    """The run's cgroup directories, from the /proc/self/cgroup it saw."""
    found = {}
    mounts = cgroups._mounts()
    for line in lines:
        _, names, path = line.split(":", 2)
        if "studio-" not in path:
            continue
        for name in names.split(",") if names else [""]:
            fstype = "cgroup2" if name == "" else "cgroup"
            for point, root, kind, options in mounts:
                if kind == fstype and (name == "" or name in options):
                    found[name or "v2"] = cgroups._directory(point, root, path)
    return found


def test_a_runs_memory_is_counted_across_its_processes(worker, create):
    run = wait_status(create("cgroup-limits", input={"probe": "together"}), "completed", "failed")
    assert run.status == "failed"
    assert run.error["code"] == "memory_limit", run.error
    assert "memory limit of 250 MB" in run.error["message"]


def test_reserved_address_space_is_not_memory(worker, create):
    run = wait_status(create("cgroup-limits", input={"probe": "reserve"}), "completed", "failed")
    assert run.status == "completed", run.error
    assert run.output == {"reserved_mb": 4096, "used_mb": 50}


def test_a_run_past_its_processes_fails_with_process_limit(worker, create):
    run = wait_status(
        create("cgroup-limits", input={"probe": "processes"}), "completed", "failed", timeout=30
    )
    assert run.status == "failed"
    assert run.error["code"] == "process_limit", run.error
    assert "more than 10 processes" in run.error["message"]
    assert "BlockingIOError" in (run.error.get("detail") or ""), run.error


def test_the_runs_cgroup_is_removed_after_the_run(worker, create):
    run = wait_status(create("cgroup-limits", input={"probe": "where"}), "completed", "failed")
    assert run.status == "completed", run.error
    directories = _directories(run.output["cgroup"])
    assert directories, run.output  # the run was in a cgroup of Studio's
    for path in directories.values():
        assert "/studio-" in path and os.path.basename(path).startswith("run-"), path
    wait_for(
        lambda: not any(os.path.exists(p) for p in directories.values()),
        5,
        message=f"the run's cgroups {sorted(directories.values())} to be removed",
    )
    # And a run with limits of its own (no prepared sandbox) gets, and loses, one too.
    run = wait_status(
        create("limited", input={"exceed": "processes"}), "completed", "failed", timeout=30
    )
    assert run.error["code"] == "process_limit", run.error


def test_the_fork_servers_cgroups_go_with_it(start_test_worker, create):
    worker = start_test_worker(STUDIO_SANDBOX="required")
    run = wait_status(create("cgroup-limits", input={"probe": "where"}), "completed", "failed")
    parents = {os.path.dirname(p) for p in _directories(run.output["cgroup"]).values()}
    assert parents and all(os.path.isdir(p) for p in parents)
    worker.terminate(timeout=30)
    wait_for(lambda: not any(os.path.exists(p) for p in parents), 5, message="cleanup")


def test_without_cgroups_the_rlimits_hold_as_before(start_test_worker, create):
    worker = start_test_worker(STUDIO_SANDBOX="required", STUDIO_SANDBOX_CGROUPS="false")
    assert "limits: rlimits (STUDIO_SANDBOX_CGROUPS=false)" in worker.log, worker.log
    run = wait_status(create("cgroup-limits", input={"probe": "reserve"}), "completed", "failed")
    assert run.status == "failed"  # RLIMIT_AS counts the reserved address space
    assert run.error["code"] == "memory_limit", run.error
    run = wait_status(create("cgroup-limits", input={"probe": "where"}), "completed", "failed")
    assert not _directories(run.output["cgroup"]), run.output
