"""A run's life in a real worker: claimed, executed in a child, streamed, finished."""

from __future__ import annotations

import os
import socket

import pytest
from huey.contrib.djhuey import HUEY

from runs.models import Run
from studio.queue_signing import QueueSerializer
from tests.workers import wait_for

from .conftest import event_types, wait_status

pytestmark = pytest.mark.worker


def test_it_completes_a_run_and_records_its_events(start_test_worker, create, project):
    start_test_worker()
    run = create("echo", input={"lines": ["hello", "<b>world</b>"]}, config={"batchSize": 3})

    wait_status(run, "completed")

    assert run.output["echo"] == {"lines": ["hello", "<b>world</b>"]}
    assert run.output["config"] == {"batchSize": 3}
    assert run.output["project"] == str(project.pk)
    assert run.output["run"] == run.pk
    assert run.exit_code == 0
    assert run.error is None
    assert run.attempt == 1
    assert run.started_at and run.completed_at and run.duration_ms is not None
    assert "hello\n<b>world</b>\n" in run.logs and "to stderr" in run.logs
    assert event_types(run) == [
        "run.created",
        "run.started",
        "log",
        "log",
        "log",
        "custom.thing",
        "progress",
        "run.completed",
    ]
    logs = [e.payload for e in run.events.filter(event_type="log").order_by("id")]
    assert logs[0] == {"stream": "stdout", "line": "hello"}
    assert {"stream": "stderr", "line": "to stderr"} in logs
    progress = run.events.get(event_type="progress").payload
    assert progress == {"current": 1, "total": 2, "message": "half"}
    assert run.events.get(event_type="run.completed").payload == {"output": run.output}


def test_event_ids_increase_in_the_order_things_happened(start_test_worker, create):
    start_test_worker()
    run = create("chatty", input={"lines": 500})
    wait_status(run, "completed")
    lines = [e.payload["line"] for e in run.events.filter(event_type="log").order_by("id")]
    assert lines == [f"line {i} " for i in range(500)]


def test_a_task_never_sees_studio_secrets(start_test_worker, create, monkeypatch):
    # Queue messages are signed with a key derived from SECRET_KEY: sign with the worker's.
    monkeypatch.setattr(HUEY, "serializer", QueueSerializer("do-not-leak"))
    start_test_worker(SECRET_KEY="do-not-leak")
    run = create("echo")
    wait_status(run, "completed")
    assert run.output["env_secret"] is None
    assert run.output["os_secret"] is None


def test_a_failing_task_records_message_code_and_traceback(start_test_worker, create):
    start_test_worker()
    run = create("flaky", input={"succeed_on": 5})
    wait_status(run, "failed")
    assert run.error["message"] == "attempt 1 failed"
    assert run.error["code"] == "task_error"
    assert "RuntimeError: attempt 1 failed" in run.error["detail"]
    assert run.exit_code == 1
    assert event_types(run)[-1] == "run.failed"
    assert run.events.last().payload["error"]["message"] == "attempt 1 failed"


def test_an_output_that_is_not_json_fails_the_run(start_test_worker, create):
    start_test_worker()
    run = create("unserializable")
    wait_status(run, "failed")
    assert run.error["code"] == "output_not_serializable"
    assert "not JSON-serialisable" in run.error["message"]


def test_an_output_that_breaks_the_output_schema_fails_even_if_the_task_turns_the_check_off(
    start_test_worker, create
):
    # The check runs in the worker, not in the task's process, which could patch it away.
    start_test_worker()
    run = create("attack-output")
    wait_status(run, "failed")
    assert run.error["code"] == "output_invalid"
    assert "output.count" in run.error["message"]
    assert run.output == {"count": "many"}  # kept, to see what the task returned


def test_a_task_process_that_dies_fails_the_run_with_its_signal(start_test_worker, create):
    start_test_worker()
    run = create("crash")
    wait_status(run, "failed")
    assert run.error["code"] == "process_died"
    assert "SIGKILL" in run.error["message"]
    assert run.exit_code == 137
    assert "about to die" in run.logs


def test_async_tasks_run(start_test_worker, create):
    start_test_worker()
    run = create("async-task")
    wait_status(run, "completed")
    assert run.output == {"async": True}
    assert "async done" in run.logs


def test_a_flood_of_output_is_capped_and_says_what_was_dropped(start_test_worker, create):
    start_test_worker(STUDIO_MAX_EVENTS_PER_RUN=50, STUDIO_MAX_LOG_BYTES=2048)
    run = create("chatty", input={"lines": 1000})
    wait_status(run, "completed")
    assert run.events.count() == 50
    dropped = run.events.get(event_type="events.dropped").payload
    assert dropped["by_type"] == {"log": 1000 - (50 - 4)}
    assert event_types(run)[-1] == "run.completed"
    assert run.logs.startswith("[... ") and "truncated" in run.logs.splitlines()[0]
    assert run.logs.rstrip().endswith("line 999")
    assert len(run.logs) < 2048 + 200


def test_a_huge_line_is_stored_truncated(start_test_worker, create):
    start_test_worker(STUDIO_MAX_EVENT_BYTES=1000)
    run = create("chatty", input={"lines": 2, "width": 5000})
    wait_status(run, "completed")
    lines = [e.payload["line"] for e in run.events.filter(event_type="log")]
    assert len(lines) >= 2
    assert all(len(line) < 1100 for line in lines)
    assert "truncated" in lines[0]


def test_a_removed_task_fails_its_pending_run_clearly(start_worker, create, tmp_path, settings):
    (tmp_path / "gone.py").write_text(
        "from runs.definitions import task\n@task\ndef run(ctx):\n    return 1\n"
    )
    settings.STUDIO_TASKS_DIR = tmp_path
    run = create("gone")
    (tmp_path / "gone.py").unlink()

    start_worker(tasks_dir=tmp_path)

    wait_status(run, "failed")
    assert run.error["code"] == "target_not_found"
    assert event_types(run)[-1] == "run.failed"


def test_awkward_characters_survive_storage_exactly(start_test_worker, create):
    start_test_worker()
    run = create("tricky")
    wait_status(run, "completed")
    lines = [e.payload["line"] for e in run.events.filter(event_type="log").order_by("id")]
    assert lines == run.output["lines"]
    event = run.events.get(event_type="tricky.event").payload
    assert event == {"value": "{'text': 'tab\\t and \\\\ and \\n newline', 'nan': nan}"}


def test_a_chatty_run_keeps_every_line_in_order(start_test_worker, create):
    start_test_worker(STUDIO_EVENT_BATCH_SIZE=1000)
    run = create("chatty", input={"lines": 20000})
    wait_status(run, "completed")
    lines = list(
        run.events.filter(event_type="log").order_by("id").values_list("payload__line", flat=True)
    )
    assert len(lines) == 20000
    assert lines[0] == "line 0 " and lines[-1] == "line 19999 "
    assert lines == [f"line {i} " for i in range(20000)]
    assert event_types(run)[-1] == "run.completed"


def test_a_reader_following_a_chatty_run_gets_every_line_once_in_order(start_test_worker, create):
    # Batches are stored by two connections at once on PostgreSQL: a reader asking again and
    # again for the lines after the last one it saw must still get each line, in order.
    start_test_worker(STUDIO_EVENT_BATCH_SIZE=500)
    run = create("chatty", input={"lines": 30000})
    seen: list[str] = []
    last_id = 0

    def caught_up_with_the_finished_run() -> bool:
        nonlocal last_id
        finished = Run.objects.filter(pk=run.pk, status="completed").exists()
        rows = list(
            run.events.filter(event_type="log", id__gt=last_id)
            .order_by("id")
            .values_list("id", "payload__line")
        )
        if rows:
            last_id = rows[-1][0]
            seen.extend(line for _, line in rows)
        return finished

    wait_for(caught_up_with_the_finished_run, 60, 0.01, message=f"{run.pk} to complete")
    assert seen == [f"line {i} " for i in range(30000)]


def test_output_no_database_stores_and_junk_on_the_event_pipe_do_not_break_the_run(
    start_test_worker, create
):
    start_test_worker()
    run = create("garbage")
    wait_status(run, "completed")
    assert run.output == {"nul": "x\ufffdy"}
    lines = [e.payload["line"] for e in run.events.filter(event_type="log").order_by("id")]
    assert "nul \ufffd byte" in lines
    assert any(line.startswith("[studio] unreadable message") for line in lines)
    assert (
        sum(line.startswith("[studio] dropped an event with an invalid type") for line in lines)
        == 2
    )
    assert run.events.get(event_type="with.nul").payload == {"text": "a\ufffdb"}
    assert event_types(run).count("run.completed") == 1  # the forged one was dropped


def test_the_fork_server_survives_a_client_that_hangs_up(start_test_worker, create):
    worker = start_test_worker()
    wait_status(create("echo"), "completed")
    zygote_pid, socket_path = fork_server_of(worker.pid)

    client = socket.socket(socket.AF_UNIX)
    client.connect(socket_path)
    client.close()  # connect and hang up without a request

    wait_status(create("echo"), "completed")
    assert fork_server_of(worker.pid)[0] == zygote_pid  # the same process, not a restarted one


def fork_server_of(worker_pid: int) -> tuple[int, str]:
    """The pid and socket path of a worker's fork server (its `python -m runs.process.forkserver` child)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode().split("\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if ppid == worker_pid and "runs.process.forkserver" in argv:
            return int(pid), argv[argv.index("runs.process.forkserver") + 1]
    raise AssertionError(f"worker {worker_pid} has no fork server")
