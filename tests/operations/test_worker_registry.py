"""The worker registry: every worker process registers and heartbeats, idle or not; a dead one's
runs are settled as soon as its death is certain; a drain request is honoured."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from django.db import connection, connections
from django.utils import timezone

from runs import service
from runs.models import Run, Worker
from runs.worker import registry
from tests.workers import TEST_TASKS, wait_for

pytestmark = pytest.mark.worker

QUICK = {"STUDIO_HEARTBEAT_SECONDS": 0.3, "STUDIO_SWEEP_SECONDS": 0.3}


@pytest.fixture(autouse=True)
def test_tasks(settings):
    settings.STUDIO_TASKS_DIR = TEST_TASKS


def wait_run(run: Run, *statuses: str, timeout: float = 20) -> Run:
    def reached():
        run.refresh_from_db()
        return run.status in statuses

    wait_for(reached, timeout, message=f"{run.pk} to reach {statuses} (is {run.status})")
    return run


def test_an_idle_worker_registers_heartbeats_and_stops_cleanly(start_worker):
    worker = start_worker(tasks_dir=TEST_TASKS, workers=3, **QUICK)
    row = wait_for(lambda: Worker.objects.filter(pid=worker.pid).first(), message="registration")
    assert row.host == socket.gethostname()
    assert row.capacity == 3
    assert row.state == "alive"
    assert row.version
    first_beat = row.heartbeat_at
    wait_for(lambda: Worker.objects.get(pk=row.pk).heartbeat_at > first_beat, message="a heartbeat")
    assert worker.terminate() == 0
    row.refresh_from_db()
    assert row.state == "stopped" and row.stopped_at is not None


def test_a_killed_workers_runs_are_settled_long_before_the_lost_window(start_worker, project):
    # The lost window is two minutes; certainty (the pid is gone, or its lock is free) is not
    # waited for.
    slow_to_notice = {**QUICK, "STUDIO_WORKER_LOST_SECONDS": 120}
    doomed = start_worker(tasks_dir=TEST_TASKS, **slow_to_notice)
    run = service.create_run(project, target="task:sleeper", input={"seconds": 600}).run
    wait_run(run, "running")
    doomed.kill()
    start_worker(tasks_dir=TEST_TASKS, **slow_to_notice)
    started = timezone.now()
    wait_run(run, "failed", timeout=20)
    assert (timezone.now() - started).total_seconds() < 20
    assert run.error["code"] == "worker_lost"
    # The worker's record says what became of its runs once they are all settled: just after.
    gone = wait_for(
        lambda: Worker.objects.filter(pid=doomed.pid).exclude(outcome={}).first(),
        message="the lost worker's outcome",
    )
    assert gone.state == "lost"
    assert gone.outcome == {"total": {"failed": 1}, "by_project": {str(project.pk): {"failed": 1}}}


def test_a_drained_worker_finishes_its_run_then_exits(start_worker, project):
    worker = start_worker(tasks_dir=TEST_TASKS, **QUICK)
    run = service.create_run(project, target="task:sleeper", input={"seconds": 2}).run
    wait_run(run, "running")
    Worker.objects.filter(pid=worker.pid).update(
        drain_requested_at=timezone.now(), drain_requested_by="root"
    )
    wait_for(lambda: Worker.objects.get(pid=worker.pid).state == "draining", message="draining")
    later = service.create_run(project, target="task:sleeper", input={"seconds": 0}).run
    assert worker.proc.wait(30) == 0  # exits by itself once idle
    wait_run(run, "completed")
    assert Worker.objects.get(pid=worker.pid).state == "stopped"
    later.refresh_from_db()
    assert later.status == "pending"  # not claimed by the draining worker


def test_a_reused_pid_is_not_taken_for_the_worker(db):
    # This test's own process stands in for a new process that got a dead worker's pid.
    me = Worker(host=socket.gethostname(), pid=__import__("os").getpid(), process_started="1")
    assert registry.pid_is_gone(me)
    me.process_started = registry.process_started(me.pid)
    assert not registry.pid_is_gone(me)
    elsewhere = Worker(host="another-host", pid=1)
    assert not registry.pid_is_gone(elsewhere)
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    assert registry.pid_is_gone(Worker(host=socket.gethostname(), pid=int(exited.stdout)))


@pytest.mark.skipif(
    "postgresql" not in str(connections.settings["default"]["ENGINE"]), reason="PostgreSQL only"
)
def test_the_postgresql_lease_is_free_only_once_its_session_is_gone(db):
    row = Worker.objects.create(name="h:1.abc", host="elsewhere", pid=1)
    holder = connections.create_connection("default")
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [registry.LOCK_NAMESPACE, row.pk])
    assert connection.vendor == "postgresql"
    assert not registry.lock_is_free(row)
    holder.close()  # the worker's process (and so its session) died
    wait_for(lambda: registry.lock_is_free(row), 5, message="the lease to be released")


def test_a_worker_that_cannot_prove_its_lease_is_fenced(monkeypatch, settings):
    settings.STUDIO_HEARTBEAT_SECONDS = 1.0
    registration = registry.Registration.__new__(registry.Registration)
    registration.interval = 1.0
    monkeypatch.setattr(registry, "_on_postgresql", lambda: True)
    registration.last_lease = __import__("time").monotonic()
    assert not registration.fenced()
    registration.last_lease -= registry.FENCE_AFTER_BEATS + 0.1  # two beats without the lease
    assert registration.fenced()
    monkeypatch.setattr(
        registry, "_on_postgresql", lambda: False
    )  # one host: the pid check is enough
    assert not registration.fenced()


@pytest.mark.skipif(
    "postgresql" not in str(connections.settings["default"]["ENGINE"]), reason="PostgreSQL only"
)
def test_on_postgresql_a_free_lease_settles_a_workers_runs_at_once(db, project, settings):
    """A worker on another host (no pid to check): its free lock is the proof of death."""
    settings.STUDIO_HEARTBEAT_SECONDS = 1
    settings.STUDIO_WORKER_LOST_SECONDS = 600
    quiet = timezone.now() - timezone.timedelta(seconds=5)
    gone = Worker.objects.create(name="far:1.aaa", host="far-away", pid=1, heartbeat_at=quiet)
    held = Worker.objects.create(name="far:2.bbb", host="far-away", pid=2, heartbeat_at=quiet)
    holder = connections.create_connection("default")
    with holder.cursor() as cursor:  # the second one's process still holds its session
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [registry.LOCK_NAMESPACE, held.pk])
    runs = {}
    for worker in (gone, held):
        run = service.create_run(project, target="task:sleeper", input={}).run
        Run.objects.filter(pk=run.pk).update(
            status="running", attempt=1, worker=f"{worker.name}:Worker-1", heartbeat_at=quiet
        )
        runs[worker.name] = run
    try:
        assert registry.settle_dead_workers() == 1
    finally:
        holder.close()
    gone.refresh_from_db()
    held.refresh_from_db()
    assert (gone.state, held.state) == ("lost", "alive")
    assert Run.objects.get(pk=runs[gone.name].pk).status == "failed"
    assert Run.objects.get(pk=runs[held.name].pk).status == "running"


def test_json_logs_carry_the_run_the_worker_is_on(start_worker, project):
    worker = start_worker(tasks_dir=TEST_TASKS, STUDIO_LOG_FORMAT="json", **QUICK)
    run = service.create_run(project, target="task:sleeper", input={"seconds": 600}).run
    wait_run(run, "running")
    # Someone else took the run: the supervisor stops it and says so, in the run's context.
    Run.objects.filter(pk=run.pk).update(worker="elsewhere:1.x:Worker-1")
    line = wait_for(
        lambda: next((line for line in worker.output if "taken away" in line), None),
        20,
        message="the supervisor's warning",
    )
    entry = __import__("json").loads(line)
    assert entry["level"] == "WARNING"
    assert entry["run_id"] == run.pk
    assert entry["project"] == "acme"
    assert entry["worker"].startswith(f"{socket.gethostname()}:{worker.pid}.")


def test_a_killed_but_unreaped_worker_counts_as_gone(db):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_for(lambda: registry._stat(proc.pid)[:1] == ["Z"], 10, message="a zombie")
        assert registry.pid_is_gone(Worker(host=socket.gethostname(), pid=proc.pid))
    finally:
        proc.wait()
