"""`manage.py task` and `manage.py tasks`, run as real subprocesses, as a developer runs them."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading

import pytest

from runs.models import Project
from tests.foundation.helpers import ROOT, SHIPPED_TASKS, subprocess_env, write_task
from tests.workers import database_url

DURATION = r"\d+ms"

CONTEXT_TASK = """
from runs.definitions import task

@task(
    name="Show context",
    input_schema={
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "retries": {"type": "integer", "default": 3},
            "options": {
                "type": "object",
                "default": {},
                "properties": {"verbose": {"type": "boolean", "default": False}},
            },
        },
    },
)
def run(ctx):
    return {
        "input": ctx.input,
        "config": ctx.config,
        "project_id": ctx.project_id,
        "run_id": ctx.run_id,
        "cancelled": ctx.cancelled,
    }
"""

# Proves run() was (not) called: it leaves a marker file next to itself.
GUARDED_TASK = """
from pathlib import Path
from runs.definitions import task

@task(
    name="Guarded",
    input_schema={
        "type": "object",
        "required": ["count"],
        "properties": {
            "count": {"type": "integer", "minimum": 1},
            "mode": {"enum": ["fast", "safe"], "default": "safe"},
        },
    },
)
def run(ctx):
    Path(__file__).with_name("ran.marker").write_text("ran")
    return {"input": ctx.input, "project_id": ctx.project_id, "run_id": ctx.run_id}
"""


@pytest.fixture
def tasks_dir(tmp_path):
    root = tmp_path / "tasks"
    root.mkdir()
    return root


@pytest.fixture
def manage(tmp_path, tasks_dir):
    """Run `manage.py <args>` in a child process against `tasks_dir` (or `tasks_dir=...`)."""

    def manage(*args, tasks_dir=tasks_dir, **env) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=subprocess_env(tmp_path, STUDIO_TASKS_DIR=str(tasks_dir), **env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return manage


def test_it_prints_the_header_the_tasks_output_the_duration_and_the_result(manage, tasks_dir):
    write_task(
        tasks_dir,
        "reports/hello.py",
        """
        from runs.definitions import task

        @task(name="Say hello")
        def run(ctx):
            print("first line")
            print("second line")
            return {"greeting": "hello", "count": 2}
        """,
    )

    result = manage("task", "reports-hello")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["Running task: Say hello (reports-hello)", "first line", "second line"]
    assert re.fullmatch(f"Task completed in {DURATION}", lines[3])
    assert json.loads(lines[4]) == {"greeting": "hello", "count": 2}
    assert len(lines) == 5
    assert result.stderr == ""


def test_a_last_print_without_newline_does_not_swallow_the_summary_lines(manage, tasks_dir):
    write_task(
        tasks_dir,
        "dots.py",
        """
        import sys
        from runs.definitions import task

        @task
        def run(ctx):
            sys.stdout.write("working...")
            return 7
        """,
    )

    result = manage("task", "dots")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "working..."
    assert re.fullmatch(f"Task completed in {DURATION}", lines[2])
    assert lines[-1] == "7"


def test_it_prints_null_when_the_task_returns_nothing(manage, tasks_dir):
    write_task(
        tasks_dir,
        "quiet.py",
        """
        from runs.definitions import task

        @task
        def run(ctx):
            pass
        """,
    )

    result = manage("task", "quiet")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "Running task: quiet (quiet)"
    assert result.stdout.splitlines()[-1] == "null"


def test_it_runs_the_shipped_examples_with_their_input(manage):
    result = manage("task", "sync-data", "--input", '{"limit": 2}', tasks_dir=SHIPPED_TASKS)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Running task: Sync external data (sync-data)"
    assert lines[1].startswith("syncing 2 of ")
    assert json.loads(lines[-1])["synced"] == 2


def test_it_awaits_an_async_task(manage, tasks_dir):
    write_task(
        tasks_dir,
        "fetch.py",
        """
        import asyncio
        from runs.definitions import task

        @task
        async def run(ctx):
            await asyncio.sleep(0)
            print("fetched")
            return [1, 2, 3]
        """,
    )

    result = manage("task", "fetch")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:2] == ["fetched"]
    assert result.stdout.splitlines()[-1] == "[1, 2, 3]"


def test_it_shows_the_tasks_output_as_it_happens(tmp_path, tasks_dir):
    release = tasks_dir / "release.flag"
    write_task(
        tasks_dir,
        "waits.py",
        f"""
        import time
        from pathlib import Path
        from runs.definitions import task

        @task
        def run(ctx):
            print("waiting for release")
            deadline = time.monotonic() + 60
            while not Path({str(release)!r}).exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            print("released" if Path({str(release)!r}).exists() else "gave up waiting")
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "task", "waits"],
        cwd=ROOT,
        env=subprocess_env(tmp_path, STUDIO_TASKS_DIR=str(tasks_dir)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout])
    reader.start()
    try:
        seen = []
        while "waiting for release\n" not in seen:
            seen.append(lines.get(timeout=30))
        # The line arrived while the task is still waiting, not when the process ended.
        assert proc.poll() is None
        release.touch()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        reader.join(10)
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert "released\n" in rest


def test_a_failing_task_prints_its_message_to_stderr_and_exits_1(manage):
    result = manage("task", "failing-task", tasks_dir=SHIPPED_TASKS)

    assert result.returncode == 1
    assert "contacting upstream..." in result.stdout
    assert "Task completed" not in result.stdout
    assert re.fullmatch(
        f"Task failed after {DURATION}: cannot sync: the upstream API answered 503\n",
        result.stderr,
    )


def test_a_failing_task_shows_its_traceback_with_the_traceback_option(manage):
    result = manage(
        "task",
        "failing-task",
        "--input",
        '{"reason": "maintenance"}',
        "--traceback",
        tasks_dir=SHIPPED_TASKS,
    )

    assert result.returncode == 1
    assert re.search(f"Task failed after {DURATION}: cannot sync: maintenance", result.stderr)
    assert "Traceback (most recent call last)" in result.stderr
    assert "UpstreamUnavailable: cannot sync: maintenance" in result.stderr


def test_an_unknown_task_lists_the_available_ones_and_exits_2(manage, tasks_dir):
    write_task(tasks_dir, "sync-data.py")
    write_task(tasks_dir, "reports/weekly.py")

    result = manage("task", "sync_data")

    assert result.returncode == 2
    assert "Unknown task 'sync_data'" in result.stderr
    assert "Available tasks: reports-weekly, sync-data" in result.stderr
    assert "Hint" not in result.stderr
    assert result.stdout == ""


def test_an_unknown_task_hints_at_files_that_failed_to_load(manage, tasks_dir):
    write_task(tasks_dir, "sync-data.py")
    write_task(tasks_dir, "broken.py", "def run(ctx)\n")

    result = manage("task", "broken")

    assert result.returncode == 2
    assert "Available tasks: sync-data" in result.stderr
    assert "1 task file(s) failed to load" in result.stderr
    assert "manage.py tasks" in result.stderr


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--input", "{count: 1}", "--input is not valid JSON"),
        ("--config", "[1, 2]", "--config must be a JSON object"),
    ],
)
def test_options_that_are_not_json_objects_exit_2(manage, tasks_dir, option, value, expected):
    write_task(tasks_dir, "guarded.py", GUARDED_TASK)
    args = {"--input": '{"count": 1}', option: value}

    result = manage("task", "guarded", *[part for pair in args.items() for part in pair])

    assert result.returncode == 2
    assert expected in result.stderr
    assert not (tasks_dir / "ran.marker").exists()


def test_input_that_breaks_the_schema_exits_2_naming_fields_and_rules_without_running(
    manage, tasks_dir
):
    write_task(tasks_dir, "guarded.py", GUARDED_TASK)

    result = manage("task", "guarded", "--input", '{"mode": "slow"}')

    assert result.returncode == 2
    assert "Invalid --input" in result.stderr
    assert "input.count: is required (required)" in result.stderr
    assert re.search(r"input\.mode: .* \(enum\)", result.stderr)
    assert result.stdout == ""
    assert not (tasks_dir / "ran.marker").exists()


def test_valid_input_runs_the_task_with_schema_defaults_applied(manage, tasks_dir):
    write_task(tasks_dir, "guarded.py", GUARDED_TASK)

    result = manage("task", "guarded", "--input", '{"count": 2}')

    assert result.returncode == 0, result.stderr
    assert (tasks_dir / "ran.marker").exists()
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "input": {"count": 2, "mode": "safe"},
        "project_id": None,
        "run_id": None,
    }


def test_the_task_sees_project_config_and_input_with_nested_defaults(
    manage, tasks_dir, transactional_db
):
    project = Project.objects.create(slug="acme", name="Acme")
    write_task(tasks_dir, "context.py", CONTEXT_TASK)

    result = manage(
        "task",
        "context",
        "--input",
        '{"name": "x"}',
        "--config",
        '{"batch": 10}',
        "--project",
        "acme",
        DATABASE_URL=database_url(),
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "input": {"name": "x", "retries": 3, "options": {"verbose": False}},
        "config": {"batch": 10},
        "project_id": str(project.pk),
        "run_id": None,
        "cancelled": False,
    }


def test_the_project_can_be_given_by_id(manage, tasks_dir, transactional_db):
    project = Project.objects.create(slug="acme", name="Acme")
    write_task(tasks_dir, "context.py", CONTEXT_TASK)

    result = manage("task", "context", "--project", str(project.pk), DATABASE_URL=database_url())

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["project_id"] == str(project.pk)


def test_an_unknown_project_exits_2(manage, tasks_dir, transactional_db):
    Project.objects.create(slug="acme", name="Acme")
    write_task(tasks_dir, "context.py", CONTEXT_TASK)

    result = manage("task", "context", "--project", "acme-typo", DATABASE_URL=database_url())

    assert result.returncode == 2
    assert "No project 'acme-typo'" in result.stderr
    assert "Running task" not in result.stdout


def test_events_and_progress_are_printed_and_the_last_line_stays_the_result(manage, tasks_dir):
    write_task(
        tasks_dir,
        "chatty.py",
        """
        from runs.definitions import task

        @task
        def run(ctx):
            ctx.emit("rows.synced", {"count": 3})
            ctx.progress(1, 4, message="first batch")
            ctx.progress(7)
            return "done"
        """,
    )

    result = manage("task", "chatty")

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        '[rows.synced] {"count": 3}',
        "[progress] 1/4 first batch",
        "[progress] 7",
    ]
    assert result.stdout.splitlines()[-1] == '"done"'


def test_the_task_does_not_see_studios_secrets(manage, tasks_dir):
    write_task(
        tasks_dir,
        "peek.py",
        """
        from runs.definitions import task

        @task
        def run(ctx):
            return sorted(n for n in ctx.env if n.startswith(("PARTNER", "SECRET", "DATABASE", "STUDIO", "DJANGO")))
        """,
    )

    result = manage("task", "peek", PARTNER_TOKEN="abc", STUDIO_WORKERS="3")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == ["PARTNER_TOKEN"]


def test_tasks_lists_id_name_schedulable_and_description_then_errors(manage, tasks_dir):
    write_task(
        tasks_dir,
        "sync-data.py",
        """
        from runs.definitions import task

        @task(name="Sync external data", description="Pull latest records", schedulable=True)
        def run(ctx):
            pass
        """,
    )
    write_task(tasks_dir, "reports/weekly.py")
    write_task(tasks_dir, "broken.py", "import studio_no_such_module\n")

    result = manage("tasks")

    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows == [
        ["ID", "NAME", "SCHEDULABLE", "DESCRIPTION"],
        ["reports-weekly", "reports-weekly", "no"],
        ["sync-data", "Sync", "external", "data", "yes", "Pull", "latest", "records"],
    ]
    assert "1 file(s) could not be loaded" in result.stderr
    assert "tasks/broken.py: ModuleNotFoundError" in result.stderr


def test_tasks_says_so_when_there_are_none(manage, tasks_dir):
    result = manage("tasks")

    assert result.returncode == 0
    assert result.stdout.startswith("No tasks found.")
