"""Every run transition, in-process: the interleavings of the races a real system meets, played in
order, without workers. Each race asserts the winner's outcome, the loser's clear result (never an
exception) and the one event that was written."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from runs import lifecycle, service
from runs.models import Run, RunStatus
from tests.workers import TEST_TASKS

W1, W2 = "host:1.aaaaaa:t1", "host:2.bbbbbb:t1"


@pytest.fixture(autouse=True)
def test_tasks(settings):
    settings.STUDIO_TASKS_DIR = TEST_TASKS


@pytest.fixture
def enqueued(monkeypatch):
    """What reached the queue, instead of the queue (run ids, delays)."""
    calls: list[tuple[str, float | None]] = []
    monkeypatch.setattr(
        "runs.lifecycle.enqueue", lambda run_id, **kw: calls.append((run_id, kw.get("delay")))
    )
    return calls


@pytest.fixture
def new_run(project, enqueued, django_capture_on_commit_callbacks):
    def make(**kwargs) -> Run:
        with django_capture_on_commit_callbacks(execute=True):
            return service.create_run(project, target="task:echo", **kwargs).run

    return make


def events(run: Run) -> list[str]:
    return list(run.events.order_by("id").values_list("event_type", flat=True))


def claimed(run: Run, worker: str = W1) -> Run:
    got = lifecycle.claim(run.pk, worker=worker)
    assert got is not None
    return got


def test_create_stores_a_pending_run_and_enqueues_it_after_commit(new_run, enqueued):
    run = new_run()
    assert run.status == RunStatus.PENDING
    assert events(run) == ["run.created"]
    assert enqueued == [(run.pk, None)]


def test_two_claims_only_one_wins(new_run):
    run = new_run()
    first = lifecycle.claim(run.pk, worker=W1)
    second = lifecycle.claim(run.pk, worker=W2)
    assert first is not None and first.worker == W1 and first.attempt == 1
    assert second is None
    run.refresh_from_db()
    assert (run.status, run.worker, run.attempt) == (RunStatus.RUNNING, W1, 1)


@pytest.mark.django_db(transaction=True)
def test_two_threads_claiming_at_once_start_the_run_once(project, enqueued):
    run = service.create_run(project, target="task:echo").run
    results: list[Run | None] = []
    barrier = threading.Barrier(4)

    def claim(worker: str) -> None:
        barrier.wait()
        try:
            results.append(lifecycle.claim(run.pk, worker=worker))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    run.refresh_from_db()
    assert run.attempt == 1 and run.worker == winners[0].worker


def test_cancel_before_claim_ends_the_run_and_the_claim_finds_nothing(new_run):
    run = new_run()
    result = lifecycle.cancel(run, "not needed")
    assert result.accepted and result.run.status == RunStatus.CANCELLED
    assert lifecycle.claim(run.pk, worker=W1) is None
    run.refresh_from_db()
    assert run.error == {"message": "not needed", "code": "cancelled", "detail": None}
    assert events(run) == ["run.created", "run.cancelled"]


def test_cancel_after_claim_is_a_request_the_worker_acknowledges(new_run):
    run = new_run()
    running = claimed(run)
    result = lifecycle.cancel(run, "stop it")
    assert result.accepted and result.run.status == RunStatus.RUNNING and result.run.cancelling
    assert lifecycle.acknowledge_cancel(running, "stop it", worker=W1)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.completed_at is not None
    assert events(run) == ["run.created", "run.cancelled"]


def test_cancel_of_a_finished_run_is_refused_and_changes_nothing(new_run):
    run = new_run()
    running = claimed(run)
    assert lifecycle.complete(running, {"ok": 1}, worker=W1)
    result = lifecycle.cancel(run, "too late")
    assert not result.accepted
    assert result.run.status == RunStatus.COMPLETED and result.run.cancel_requested_at is None


def test_cancel_racing_a_retry_wins_and_the_run_is_not_retried(new_run, enqueued):
    run = new_run(backoff_limit=3)
    running = claimed(run)
    lifecycle.cancel(run, "operator said stop")  # arrives while the attempt is failing
    outcome = lifecycle.retry_later(
        running, lifecycle.error("boom", "task_error"), worker=W1, delay=5
    )
    assert outcome == "cancelled"
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.error["code"] == "cancelled" and "before its retry" in run.error["message"]
    assert [r for r, delay in enqueued if delay] == []  # no retry message
    assert events(run) == ["run.created", "run.cancelled"]


def test_retry_without_a_cancel_waits_and_enqueues_a_delayed_message(
    new_run, enqueued, django_capture_on_commit_callbacks
):
    run = new_run(backoff_limit=1)
    running = claimed(run)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = lifecycle.retry_later(
            running, lifecycle.error("boom", "task_error"), worker=W1, delay=7
        )
    assert outcome == "retrying"
    run.refresh_from_db()
    assert (run.status, run.waiting_reason) == (RunStatus.WAITING, "retry")
    assert run.metadata["retry"]["failed_attempt"] == 1
    assert (run.pk, 7) in enqueued
    retrying = run.events.get(event_type="run.retrying").payload
    assert retrying["attempt"] == 2 and retrying["failed_attempt"] == 1


def test_a_retry_is_not_claimed_before_it_is_due(new_run):
    run = new_run(backoff_limit=1)
    running = claimed(run)
    lifecycle.retry_later(running, lifecycle.error("boom", "task_error"), worker=W1, delay=60)
    assert lifecycle.claim(run.pk, worker=W2) is None
    later = timezone.now() + timedelta(seconds=61)
    again = lifecycle.claim(run.pk, worker=W2, now=later)
    assert again is not None and again.attempt == 2


def test_sweeper_settling_a_lost_run_beats_the_late_finish(new_run):
    run = new_run()
    running = claimed(run)
    stale = Run.objects.get(pk=run.pk)
    assert lifecycle.settle_lost(stale, retry_delay=1) == RunStatus.FAILED
    # The worker was only paused; it wakes and tries to finish: refused, nothing written.
    assert not lifecycle.complete(running, {"late": True}, worker=W1)
    assert not lifecycle.heartbeat(run.pk, W1)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error["code"] == "worker_lost"
    assert run.output is None
    assert events(run) == ["run.created", "run.failed"]


def test_a_late_finish_before_the_sweeper_wins_and_the_sweeper_does_nothing(new_run):
    run = new_run()
    running = claimed(run)
    stale = Run.objects.get(pk=run.pk)
    assert lifecycle.complete(running, {"done": True}, worker=W1)
    assert lifecycle.settle_lost(stale, retry_delay=1) is None
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.output == {"done": True}


def test_a_heartbeat_after_the_sweeper_looked_keeps_the_run(new_run):
    run = new_run()
    claimed(run)
    stale = Run.objects.get(pk=run.pk)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() + timedelta(seconds=1))
    assert lifecycle.settle_lost(stale, retry_delay=1) is None
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_a_lost_run_with_attempts_left_is_retried_and_a_cancelled_one_cancelled(new_run):
    retried = new_run(backoff_limit=2)
    claimed(retried)
    assert lifecycle.settle_lost(Run.objects.get(pk=retried.pk), retry_delay=3) == "waiting"
    cancelled = new_run(backoff_limit=2)
    claimed(cancelled)
    lifecycle.cancel(cancelled, "stop")
    assert lifecycle.settle_lost(Run.objects.get(pk=cancelled.pk), retry_delay=3) == "cancelled"


def test_hand_back_returns_the_attempt_and_requeues(
    new_run, enqueued, django_capture_on_commit_callbacks
):
    run = new_run()
    running = claimed(run)
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.hand_back(running, W1, "deploy") == "requeued"
    run.refresh_from_db()
    assert (run.status, run.attempt, run.worker) == (RunStatus.PENDING, 0, None)
    assert enqueued[-1] == (run.pk, None)
    assert events(run)[-1] == "run.requeued"


def test_hand_back_of_a_run_with_a_cancel_request_cancels_it(new_run):
    run = new_run()
    running = claimed(run)
    lifecycle.cancel(run, "stop")
    assert lifecycle.hand_back(running, W1, "deploy") == "cancelled"
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and "worker shut down" in run.error["message"]


def test_an_idle_run_with_a_cancel_request_is_settled(new_run):
    run = new_run()
    Run.objects.filter(pk=run.pk).update(cancel_requested_at=timezone.now(), cancel_reason="x")
    run = Run.objects.get(pk=run.pk)
    assert lifecycle.settle_cancel_request(run)
    assert not lifecycle.settle_cancel_request(run)  # twice: the second finds nothing to do
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED


def test_fail_of_an_unstarted_run_is_guarded_by_the_status_seen(new_run):
    run = new_run()
    seen = Run.objects.get(pk=run.pk)
    claimed(run)  # a worker took it meanwhile
    assert not lifecycle.fail(seen, lifecycle.error("gone", "target_not_found"))
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING


def test_wait_and_resume(new_run):
    run = new_run()
    running = claimed(run)
    until = timezone.now() + timedelta(minutes=5)
    assert lifecycle.wait(running, "approval", resume_at=until)
    assert not lifecycle.wait(running, "approval")  # not running any more
    running.refresh_from_db()
    assert (running.status, running.waiting_reason) == (RunStatus.WAITING, "approval")
    assert lifecycle.resume(running)
    assert not lifecycle.resume(running)
    running.refresh_from_db()
    assert running.status == RunStatus.RUNNING and running.waiting_reason is None
    assert events(run)[-2:] == ["run.waiting", "run.resumed"]


def test_start_runs_an_orchestrated_run_without_a_worker(new_run):
    run = new_run()
    assert lifecycle.start(run)
    assert not lifecycle.start(run)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.worker is None and run.started_at
    assert lifecycle.complete(run, {"x": 1})


# --- hooks ------------------------------------------------------------------------------------


@pytest.fixture
def hooks(monkeypatch):
    """A clean set of hook lists for one test (the app's own hooks stay out of the way)."""
    monkeypatch.setattr(lifecycle, "_terminal_hooks", {"in_transaction": [], "after_commit": []})
    monkeypatch.setattr(lifecycle, "_release_hooks", [])
    return lifecycle


def test_terminal_hooks_run_in_the_transaction_and_after_commit(
    new_run, hooks, django_capture_on_commit_callbacks
):
    seen: list[tuple[str, str, str]] = []
    hooks.on_terminal(lambda r: seen.append(("in", r.pk, r.status)), phase="in_transaction")
    hooks.on_terminal(lambda r: seen.append(("after", r.pk, r.status)))
    hooks.on_release(lambda r: seen.append(("release", r.pk, r.status)))
    run = new_run()
    running = claimed(run)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        lifecycle.complete(running, None, worker=W1)
    assert seen == [("in", run.pk, "completed")]  # after-commit ones wait for the commit
    for callback in callbacks:
        callback()
    assert seen[1:] == [("after", run.pk, "completed"), ("release", run.pk, "completed")]


def test_a_failing_hook_never_undoes_the_transition(
    new_run, hooks, django_capture_on_commit_callbacks
):
    def broken(run):
        Run.objects.filter(pk=run.pk).update(name="written by a broken hook")
        raise RuntimeError("hook bug")

    hooks.on_terminal(broken, phase="in_transaction")
    hooks.on_terminal(lambda r: 1 / 0)
    run = new_run()
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.cancel(run, "stop").accepted
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.name != "written by a broken hook"  # its savepoint was rolled back


def test_release_hooks_fire_when_a_run_leaves_running_but_not_for_idle_cancels(
    new_run, hooks, django_capture_on_commit_callbacks
):
    released: list[str] = []
    hooks.on_release(lambda r: released.append(r.status))
    idle = new_run()
    busy = new_run(backoff_limit=1)
    running = claimed(busy)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.cancel(idle, "x")
        lifecycle.retry_later(running, lifecycle.error("e", "task_error"), worker=W1, delay=1)
    assert released == ["waiting"]


def test_on_terminal_refuses_an_unknown_phase(hooks):
    with pytest.raises(ValueError, match="phase"):
        hooks.on_terminal(print, phase="before")


def test_error_shape_always_has_a_string_code_and_message():
    assert lifecycle.error(ValueError("x"), "") == {"message": "x", "code": "error", "detail": None}
    assert lifecycle.error("m", None)["code"] == "error"
