"""Workflows on real workers: children run in processes, the workflow advances from their hooks."""

from __future__ import annotations

import os

import pytest

from runs import service
from runs.models import Run
from runs.orchestration import actions
from tests.engine.test_cancel_timeout import host_pids
from tests.workers import wait_for

from .conftest import children, statuses, steps, wait_run

pytestmark = pytest.mark.worker


def test_a_chain_completes_through_real_workers(start_wf_worker, launch):
    start_wf_worker()
    run = launch("chain", {"x": 4})
    wait_run(run, "completed")
    assert run.output == {"result": 4}
    a, b = children(run, "a")[0], children(run, "b")[0]
    assert b.started_at >= a.completed_at  # b started only after a ended
    types = list(run.events.values_list("event_type", flat=True))
    assert types == [
        "run.created",
        "run.started",
        "step.started",
        "step.completed",
        "step.started",
        "step.completed",
        "run.completed",
    ]


def test_independent_steps_run_in_parallel(start_wf_worker, launch):
    start_wf_worker(workers=3)
    run = launch("parallel")
    wait_run(run, "completed")
    a, b = children(run, "a")[0], children(run, "b")[0]
    c = children(run, "c")[0]
    assert a.created_at == b.created_at or abs((a.created_at - b.created_at).total_seconds()) < 0.5
    assert c.input == {"value": [1, 2]}


def test_map_output_keeps_item_order(start_wf_worker, launch):
    start_wf_worker(workers=3)
    run = launch("fanout", {"items": [5, 4, 3, 2, 1]})
    wait_run(run, "completed")
    assert run.output == {"all": [5, 4, 3, 2, 1]}
    kids = children(run, "each")
    assert [k.metadata["item_index"] for k in kids] == [0, 1, 2, 3, 4]


def test_a_map_whose_items_end_together_completes_with_each_item_once(start_wf_worker, launch):
    # Items ending at once coalesce their advances (one queued at a time): none may be lost.
    start_wf_worker(workers=4)
    values = list(range(24))
    run = launch("fanout", {"items": values})
    wait_run(run, "completed", timeout=90)
    assert run.output == {"all": values}
    kids = children(run, "each")
    assert sorted(k.metadata["item_index"] for k in kids) == values
    assert all(k.status == "completed" and k.attempt == 1 for k in kids)


def test_a_step_is_retried_as_its_childs_retries(start_wf_worker, launch):
    start_wf_worker(STUDIO_RETRY_BASE_SECONDS="0.1", STUDIO_RETRY_MAX_SECONDS="0.2")
    run = launch("retry")
    wait_run(run, "completed")
    (child,) = children(run, "flaky")
    assert child.attempt == 2 and child.backoff_limit == 2
    assert run.output == {"flaky": "ok"}
    assert "step.retrying" in run.events.values_list("event_type", flat=True)


def test_sleep_survives_a_worker_restart(start_wf_worker, launch):
    worker = start_wf_worker()
    run = launch("waits")
    wait_run(run, "waiting")
    assert run.waiting_reason == "sleep"
    worker.kill()  # the delayed message is in the queue's storage, the deadline in the database
    actions.send_signal(run, "payment.received", {"amount": 9})
    start_wf_worker()
    wait_run(run, "completed")
    assert children(run, "receipt")[0].input == {"value": 9}
    assert run.events.filter(event_type="event.received").count() == 1


def test_approval_through_a_worker(start_wf_worker, launch):
    start_wf_worker()
    run = launch("gate")
    wait_run(run, "waiting")
    assert run.waiting_reason == "approval"
    actions.decide_approval(run, "review", approved=True, comment="ship", by="alice")
    wait_run(run, "completed")
    assert run.output == {"shipped": "ship"}


def test_sub_workflow_through_a_worker(start_wf_worker, launch):
    start_wf_worker()
    run = launch("parent")
    wait_run(run, "completed")
    assert run.output == {"sub": 7}
    (sub,) = children(run, "sub")
    assert sub.kind == "workflow" and sub.status == "completed"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancel_cascades_and_the_stubborn_child_process_is_gone(start_wf_worker, launch):
    start_wf_worker(STUDIO_CANCEL_GRACE_SECONDS="0.5")
    run = launch("stuck")
    (hold_id,) = wait_for(lambda: steps(run)["hold"].child_run_ids, message="child created")
    hold = Run.objects.get(pk=hold_id)

    def spawned():
        hold.refresh_from_db()
        return "spawned" in hold.logs or hold.events.filter(event_type="log").exists()

    wait_for(spawned, 20, message="the stubborn task to spawn its child")
    line = hold.events.filter(event_type="log").first().payload["line"]
    # Found by its command line: inside the run's sandbox the printed pid is of its namespace.
    grandchild = wait_for(lambda: host_pids(["sleep", line.split()[-1]]), 10)[0]
    service.cancel_run(run)
    wait_run(run, "cancelled")
    hold.refresh_from_db()
    assert hold.status == "cancelled"
    assert statuses(run) == {"hold": "cancelled", "ask": "cancelled"}
    wait_for(lambda: not _alive(grandchild), 10, message="the stubborn grandchild to be gone")


def test_workflow_timeout_fails_with_code_timeout(start_wf_worker, launch):
    start_wf_worker(STUDIO_CANCEL_GRACE_SECONDS="0.5")
    run = launch("stuck", timeout_seconds=2)
    wait_run(run, "failed")
    assert run.error["code"] == "timeout"
    assert children(run, "hold")[0].status == "cancelled"


def test_a_crash_mid_advance_starts_no_step_twice(start_wf_worker, launch):
    crashing = start_wf_worker(STUDIO_TEST_CRASH_IN_ADVANCE="b", STUDIO_REQUEUE_AFTER_SECONDS="1")
    run = launch("chain", {"x": 1})
    wait_for(
        lambda: crashing.proc.poll() is not None, 30, message="the worker to crash mid-advance"
    )
    assert steps(run)["b"].status == "pending" and steps(run)["b"].child_run_ids == []
    start_wf_worker(STUDIO_REQUEUE_AFTER_SECONDS="1")
    wait_run(run, "completed")
    assert len(steps(run)["b"].child_run_ids) == 1
    assert Run.objects.filter(parent_run=run, metadata__step_id="b").count() == 1
