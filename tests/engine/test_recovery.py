"""Nothing gets stuck, nothing is lost: dead workers, lost messages, shutdowns, races."""

from __future__ import annotations

import pytest
from django.db import connection
from huey.contrib.djhuey import HUEY

from runs import service
from runs.models import Run, RunEvent
from runs.queue import enqueue
from tests.workers import wait_for

from .conftest import event_types, wait_status
from .test_cancel_timeout import in_group

pytestmark = pytest.mark.worker

FAST_SWEEP = {
    "STUDIO_HEARTBEAT_SECONDS": 0.2,
    "STUDIO_WORKER_LOST_SECONDS": 1.5,
    "STUDIO_SWEEP_SECONDS": 0.3,
}


def test_a_run_of_a_worker_killed_with_sigkill_ends_worker_lost(start_test_worker, create):
    doomed = start_test_worker(**FAST_SWEEP)
    run = create("sleeper", input={"seconds": 600})
    line = wait_for(
        lambda: run.events.filter(payload__line__startswith="sleeping in").first(),
        20,
        message="start",
    )
    task_pid = int(line.payload["line"].split()[-1])
    doomed.kill()
    # The run's process dies with its worker (worker -> fork server -> child, each PDEATHSIG).
    wait_for(
        lambda: not in_group(task_pid),
        10,
        message=f"task process {task_pid} to die with its worker",
    )

    start_test_worker(**FAST_SWEEP)  # its sweeper notices the silence
    wait_status(run, "failed")
    assert run.error["code"] == "worker_lost"
    assert str(doomed.pid) in run.error["message"]
    assert event_types(run)[-1] == "run.failed"


def test_a_run_of_a_killed_worker_is_retried_when_attempts_remain(start_test_worker, create):
    doomed = start_test_worker(**FAST_SWEEP)
    run = create("sleeper", input={"seconds": 3}, backoff_limit=1)
    wait_status(run, "running")
    doomed.kill()

    start_test_worker(**FAST_SWEEP, STUDIO_RETRY_BASE_SECONDS=0.1)
    wait_status(run, "completed", timeout=40)
    assert run.attempt == 2
    retrying = run.events.get(event_type="run.retrying").payload
    assert retrying["error"]["code"] == "worker_lost"


def test_a_pending_run_whose_queue_message_was_lost_is_re_enqueued(start_test_worker, create):
    run = create("sleeper", input={"seconds": 0})
    HUEY.storage.flush_queue()  # the message is gone; only the database knows about the run
    assert HUEY.pending_count() == 0

    start_test_worker(STUDIO_REQUEUE_AFTER_SECONDS=0.5, STUDIO_SWEEP_SECONDS=0.3)
    wait_status(run, "completed")
    assert event_types(run).count("run.started") == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="cuts PostgreSQL connections")
def test_a_worker_whose_database_connection_was_cut_takes_the_next_run_at_once(
    start_test_worker, create
):
    # One thread, so that the next run meets the very connection that was cut; the sweeper
    # would re-enqueue a run whose message was lost only after ten minutes here: the worker
    # itself must cope with the dead connection.
    start_test_worker(workers=1, STUDIO_REQUEUE_AFTER_SECONDS=600)
    wait_status(create("counter"), "completed")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

    run = create("counter")  # claimed within a second of the last run: no ping first
    wait_status(run, "completed", timeout=10)
    assert event_types(run).count("run.started") == 1


def test_two_workers_never_execute_the_same_attempt_twice(start_test_worker, create):
    runs = [create("counter") for _ in range(20)]
    for run in runs:  # every message three times over: duplicates must be harmless
        enqueue(run.pk)
        enqueue(run.pk)
    start_test_worker(workers=4)
    start_test_worker(workers=4)
    for run in runs:
        wait_status(run, "completed")
    executed = [
        e.payload["line"].split()[1]
        for e in RunEvent.objects.filter(event_type="log", payload__line__startswith="executed")
    ]
    assert sorted(executed) == sorted(r.pk for r in runs)
    assert RunEvent.objects.filter(event_type="run.started").count() == 20


def test_sigterm_lets_a_short_run_finish(start_test_worker, create):
    worker = start_test_worker(STUDIO_SHUTDOWN_GRACE_SECONDS=10)
    run = create("sleeper", input={"seconds": 1})
    wait_status(run, "running")
    assert worker.terminate(timeout=30) == 0
    run.refresh_from_db()
    assert run.status == "completed"


def test_sigterm_hands_a_long_run_back_and_another_worker_finishes_it(start_test_worker, create):
    worker = start_test_worker(STUDIO_SHUTDOWN_GRACE_SECONDS=0.5)
    run = create("sleeper", input={"seconds": 3})
    wait_status(run, "running")
    worker.terminate(timeout=30)
    run.refresh_from_db()
    assert run.status == "pending"
    assert run.attempt == 0  # a planned shutdown does not spend an attempt
    assert "run.requeued" in event_types(run)

    start_test_worker()
    wait_status(run, "completed", timeout=30)
    assert run.attempt == 1


def test_a_concurrency_limit_runs_one_at_a_time_in_order(start_test_worker, create):
    runs = [create("serial") for _ in range(4)]
    start_test_worker(workers=4)
    for run in runs:
        wait_status(run, "completed", timeout=40)
    entries = sorted(
        (line.split() for run in runs for line in run.logs.splitlines()),
        key=lambda e: float(e[2]),
    )
    assert [e[0] for e in entries] == ["start", "end"] * 4  # never two inside at once
    assert [e[1] for e in entries if e[0] == "start"] == [r.pk for r in runs]  # oldest first


def test_the_same_public_id_returns_the_first_run_and_starts_nothing_new(project, create):
    first = service.create_run(project, target="task:sleeper", public_id="order-42")
    again = service.create_run(
        project, target="task:sleeper", public_id="order-42", input={"seconds": 9}
    )
    assert first.duplicate is False
    assert again.duplicate is True
    assert again.run.pk == first.run.pk
    assert Run.objects.filter(public_id="order-42").count() == 1


def test_a_public_id_is_scoped_to_its_project(project, other_project):
    a = service.create_run(project, target="task:sleeper", public_id="same")
    b = service.create_run(other_project, target="task:sleeper", public_id="same")
    assert b.duplicate is False
    assert a.run.pk != b.run.pk
