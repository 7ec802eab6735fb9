"""@task(reuse_process=True): a warm process serves a task's runs one after another, and is
replaced after a cancel, a timeout, a crash, N runs, an idle while, or an edit of its file."""

from __future__ import annotations

import os
import signal

import pytest
from django.conf import settings

from runs import service
from runs.process import sandbox
from tests.workers import wait_for

from .conftest import event_types, wait_status
from .test_cancel_timeout import alive

pytestmark = pytest.mark.worker

sandboxed = pytest.mark.skipif(
    sandbox.probe(sandbox.Policy()) is not None, reason="this kernel cannot sandbox runs"
)


@pytest.fixture
def run_reused(create):
    """Create a run of tests/task_files/reused.py, wait for its end, return it."""

    def run_reused(project=None, timeout=20, **input):
        if project is None:
            run = create("reused", input=input)
        else:
            run = service.create_run(project, target="task:reused", input=input).run
        return wait_status(run, "completed", "failed", "cancelled", timeout=timeout)

    return run_reused


def assert_served_by_a_new_process(run, before) -> None:
    assert run.status == "completed", run.error
    assert run.output["count"] == 1
    assert run.output["process"] != before.output["process"]


def test_runs_of_a_project_share_one_process_and_its_memory(start_test_worker, run_reused):
    start_test_worker()
    runs = [run_reused() for _ in range(3)]
    assert [r.status for r in runs] == ["completed"] * 3, [r.error for r in runs]
    assert [r.output["count"] for r in runs] == [1, 2, 3]
    assert len({r.output["process"] for r in runs}) == 1
    assert len({(r.output["pid"], r.output["uid"]) for r in runs}) == 1


def test_another_projects_runs_get_a_process_of_their_own(
    start_test_worker, run_reused, other_project
):
    start_test_worker()
    first = run_reused()
    theirs = [run_reused(other_project), run_reused(other_project)]
    again = run_reused()
    assert [first.output["count"], again.output["count"]] == [1, 2]
    assert [r.output["count"] for r in theirs] == [1, 2]
    assert theirs[0].output["process"] != first.output["process"]
    assert again.output["process"] == first.output["process"]


def test_runs_at_the_same_time_get_a_process_each(start_test_worker, create):
    start_test_worker(STUDIO_WORKERS=2, STUDIO_CANCEL_GRACE_SECONDS=10)
    runs = [create("reused", input={"do": "wait"}) for _ in range(2)]
    for run in runs:
        wait_for(lambda run=run: "counted" in event_types(run), message="both runs to start")
    for run in runs:
        service.cancel_run(run)
    runs = [wait_status(run, "cancelled") for run in runs]
    assert [r.output["count"] for r in runs] == [1, 1]
    assert runs[0].output["process"] != runs[1].output["process"]


def test_a_process_is_replaced_after_max_runs(start_test_worker, run_reused):
    start_test_worker(STUDIO_REUSE_PROCESS_MAX_RUNS=2)
    runs = [run_reused() for _ in range(5)]
    assert [r.output["count"] for r in runs] == [1, 2, 1, 2, 1]
    assert len({r.output["process"] for r in runs}) == 3


def test_a_process_past_half_its_cpu_limit_is_replaced(start_test_worker, run_reused):
    # RLIMIT_CPU counts the process, every run together: each run starts with at least half.
    start_test_worker(STUDIO_RUN_CPU_SECONDS=2)
    runs = [run_reused(do="burn", cpu_ms=300), run_reused(do="burn", cpu_ms=800), run_reused()]
    assert [r.status for r in runs] == ["completed"] * 3, [r.error for r in runs]
    assert [r.output["count"] for r in runs] == [1, 2, 1]


def test_a_cancelled_run_ends_its_process_even_if_it_stops_in_time(
    start_test_worker, run_reused, create
):
    start_test_worker(STUDIO_CANCEL_GRACE_SECONDS=10)
    before = run_reused()
    run = create("reused", input={"do": "wait"})
    wait_for(lambda: "counted" in event_types(run), message="the run to start waiting")
    service.cancel_run(run)
    run = wait_status(run, "cancelled")
    assert run.output["cancelled"] is True  # it honoured the cancel, well within the grace
    assert "stopped after" not in run.cancel_reason
    assert_served_by_a_new_process(run_reused(), before)


def test_a_timed_out_run_ends_its_process(start_test_worker, run_reused, create):
    start_test_worker()
    before = run_reused()
    run = wait_status(
        create("reused", input={"do": "wait", "seconds": 60}, timeout_seconds=1), "failed"
    )
    assert run.error["code"] == "timeout"
    assert_served_by_a_new_process(run_reused(), before)


@pytest.mark.parametrize(
    "do, code, message, replaced",
    [
        ("crash", "process_died", "exited with code 3 before returning", True),
        ("fail", "task_error", "failing on purpose", False),
    ],
)
def test_a_failed_run_replaces_its_process_only_if_the_process_died(
    start_test_worker, run_reused, do, code, message, replaced
):
    start_test_worker()
    before = run_reused()
    failed = run_reused(do=do)
    assert failed.status == "failed"
    assert (failed.error["code"], message in failed.error["message"]) == (code, True)
    after = run_reused()
    if replaced:  # os._exit in the task: the run fails, the next one gets a new process
        assert_served_by_a_new_process(after, before)
    else:  # an exception: exit code 1, and the process serves the next run
        assert failed.exit_code == 1
        assert after.output["count"] == 3
        assert after.output["process"] == before.output["process"]


def test_output_schema_is_still_checked(start_test_worker, run_reused):
    start_test_worker()
    run = run_reused(do="bad-output")
    assert run.status == "failed"
    assert run.error["code"] == "output_invalid"
    assert run_reused().output["count"] == 2  # the process served the next run all the same


def test_each_runs_logs_and_events_are_its_own(start_test_worker, run_reused):
    start_test_worker()
    first, second = run_reused(), run_reused()
    for run, other in ((first, second), (second, first)):
        lines = [e.payload["line"] for e in run.events.filter(event_type="log").order_by("id")]
        assert lines == [f"run {run.pk} is number {run.output['count']}", f"stderr of {run.pk}"]
        assert other.pk not in run.logs
        counted = [e.payload for e in run.events.filter(event_type="counted")]
        assert counted == [{"count": run.output["count"], "run": run.pk}]
    assert event_types(second) == [
        "run.created",
        "run.started",
        "log",
        "log",
        "counted",
        "run.completed",
    ]


def test_an_edited_task_file_is_picked_up_by_the_next_run(start_worker, create, tmp_path, settings):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    settings.STUDIO_TASKS_DIR = tasks
    source = (
        "from runs.definitions import task\n\nCOUNT = 0\n\n\n"
        "@task(reuse_process=True)\ndef run(ctx):\n"
        "    global COUNT\n    COUNT += 1\n    return {'version': VERSION, 'count': COUNT}\n"
    )
    (tasks / "edited.py").write_text(source.replace("COUNT = 0", "VERSION = 1\nCOUNT = 0"))
    start_worker(tasks_dir=tasks)
    first = [wait_status(create("edited"), "completed") for _ in range(2)]
    (tasks / "edited.py").write_text(source.replace("COUNT = 0", "VERSION = 'two'\nCOUNT = 0"))
    after = wait_status(create("edited"), "completed", "failed")
    assert [r.output for r in first] == [{"version": 1, "count": 1}, {"version": 1, "count": 2}]
    assert after.output == {"version": "two", "count": 1}


@sandboxed
def test_the_sandbox_still_holds(start_test_worker, run_reused):
    start_test_worker(STUDIO_SANDBOX="required")
    secret = str(settings.VAR_DIR / "secret_key")
    first, second = (
        run_reused(do="look", secret_path=secret),
        run_reused(do="look", secret_path=secret),
    )
    for run in (first, second):
        assert run.status == "completed", run.error
        assert run.output["visible pids"] == [1, 2]  # its init and itself: nothing of Studio's
        assert run.output["secret"].startswith("denied")
        assert run.output["uid"] >= settings.STUDIO_SANDBOX_UID_BASE or os.geteuid() != 0
    # What this mode shares, as the README says: the previous run's /tmp.
    assert first.output["previous"].startswith("denied: FileNotFoundError")
    assert second.output["previous"] == f"GOT: {first.pk}"


@sandboxed
@pytest.mark.skipif(os.geteuid() != 0, reason="finds the process by its uid, which needs root")
def test_an_idle_process_is_ended(start_test_worker, run_reused):
    start_test_worker(STUDIO_REUSE_PROCESS_IDLE_SECONDS=0.5)
    run = run_reused()
    p1 = run.output["uid"] - settings.STUDIO_SANDBOX_UID_BASE  # its PID 1 on this host
    assert alive(p1)
    wait_for(lambda: not alive(p1), 10, message=f"the idle process (P1 {p1}) to end")
    assert run_reused().output["count"] == 1


def test_limits_apply_and_a_memory_limit_is_reported_as_such(start_test_worker, create):
    start_test_worker()
    first = wait_status(create("reused-limited", input={"mb": 10}), "completed", "failed")
    second = wait_status(create("reused-limited", input={"mb": 10}), "completed", "failed")
    assert [first.output, second.output] == [{"count": 1}, {"count": 2}]
    over = wait_status(create("reused-limited", input={"mb": 300}), "completed", "failed")
    assert over.status == "failed"
    assert over.error["code"] == "memory_limit", over.error
    after = wait_status(create("reused-limited", input={"mb": 10}), "completed", "failed")
    assert after.status == "completed", after.error


@sandboxed
@pytest.mark.skipif(os.geteuid() != 0, reason="finds the process by its uid, which needs root")
def test_a_process_that_died_while_idle_does_not_fail_the_next_run(start_test_worker, run_reused):
    start_test_worker()
    before = run_reused()
    p1 = before.output["uid"] - settings.STUDIO_SANDBOX_UID_BASE
    os.kill(p1, signal.SIGKILL)  # as the OOM killer or an operator might
    wait_for(lambda: not alive(p1), 10, message=f"P1 {p1} to end")
    assert_served_by_a_new_process(run_reused(), before)


def test_the_metrics_say_how_often_a_run_found_a_warm_process_and_why_one_ended(
    start_test_worker, run_reused, client, settings
):
    from tests.operations.test_metrics import TOKEN, scrape, value

    settings.STUDIO_METRICS_TOKEN = TOKEN
    before = scrape(client)
    start_test_worker(STUDIO_REUSE_PROCESS_MAX_RUNS=2)
    runs = [run_reused() for _ in range(3)]
    assert [r.output["count"] for r in runs] == [1, 2, 1]

    def grew(name: str, **labels) -> float:
        return value(scrape(client), name, **labels) - value(before, name, **labels)

    # Counted in the worker, added up by this process's /metrics (multiprocess mode).
    wait_for(
        lambda: grew("studio_reuse_process_runs_total", process="new") == 2,
        message="two runs in a new process",
    )
    assert grew("studio_reuse_process_runs_total", process="warm") == 1
    assert grew("studio_reuse_processes_ended_total", reason="max_runs") == 1
